;; A command that writes to stdout in pieces, checks what fd_write reports, then closes
;; stdout and writes again. It must print "out\nok\nfault\n" every run: a write after the
;; close fails, a bad iovec pointer is an error (not a trap), and a run that shared its WASI
;; environment with the last one would find stdout gone and print nothing.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "out\nok\nfault\nafter\n")
  (func $write (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr)) (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
  (func (export "_start")
    ;; "out\n" as two iovecs, "ou" and "t\n": 4 bytes written.
    (i32.store (i32.const 24) (i32.const 100)) (i32.store (i32.const 28) (i32.const 2))
    (i32.store (i32.const 32) (i32.const 102)) (i32.store (i32.const 36) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 24) (i32.const 2) (i32.const 16)))
    (if (i32.eq (i32.load (i32.const 16)) (i32.const 4))
      (then (drop (call $write (i32.const 104) (i32.const 3)))))
    ;; An iovec array outside memory: an errno, no trap.
    (if (i32.ne (call $fd_write (i32.const 1) (i32.const 0xfffffff0) (i32.const 1) (i32.const 16)) (i32.const 0))
      (then (drop (call $write (i32.const 107) (i32.const 6)))))
    (drop (call $fd_close (i32.const 1)))
    (drop (call $write (i32.const 113) (i32.const 6)))))
