"""The coordinator-side commands: each module has add_arguments(parser) and run(args)."""
