"""The sizes of org the sandbox generates, by name, in a module of their own: the CLI's options list
them in their help, which must not wait for the generator and the emulator to import."""

SIZES = ("S", "M", "L")
