"""A Kubernetes API emulator serving a living Flux fleet over the real list/watch protocol."""
