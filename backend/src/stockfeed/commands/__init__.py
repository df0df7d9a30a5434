"""Subcommands of `stockfeed` other than `serve`: one module each, with `register(sub)`."""
