"""`newsletter serve`: the WSGI app answering unsubscribe links, and the archive of issues."""
