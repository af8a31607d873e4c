"""Who receives the newsletter: the subscriber store, CSV in and out, signed tokens."""
