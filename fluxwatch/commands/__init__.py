"""One module per subcommand; each exposes ``register(subparsers)``.

A module's ``register`` adds its parser and sets ``handler`` (a callable taking the parsed
arguments and returning an exit code) with ``parser.set_defaults(handler=...)``.
"""
