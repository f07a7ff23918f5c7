"""Model files uploaded from a browser, in resumable chunks (``uploads.py``): the only way in for remote and
Docker installs whose users have no shell on the store's host."""
