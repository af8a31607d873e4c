"""`newsletter preview`: the live preview page, reloaded on save, and its screenshots."""
