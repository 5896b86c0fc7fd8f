;; Declares 64 MiB of memory at start.
(module (memory (export "memory") 1024))
