;; Imports C library functions from the host (env.*), as modules built with -nostdlib
;; --allow-undefined for the built-in filter do.
(module
  (import "env" "malloc" (func $malloc (param i32) (result i32)))
  (import "env" "free" (func $free (param i32)))
  (import "env" "sprintf" (func $sprintf (param i32 i32 i32) (result i32)))
  (import "env" "printf" (func $printf (param i32 i32) (result i32)))
  (import "env" "strlen" (func $strlen (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "%s=%05d|%x\00")
  (data (i32.const 32) "answer\00")
  (data (i32.const 48) "printed %d\0a\00")
  ;; fmt(n): sprintf(malloc(64), "%s=%05d|%x", "answer", n, n) -> the buffer
  (func (export "fmt") (param $n i32) (result i32) (local $buf i32)
    (local.set $buf (call $malloc (i32.const 64)))
    (i32.store (i32.const 256) (i32.const 32))
    (i32.store (i32.const 260) (local.get $n))
    (i32.store (i32.const 264) (local.get $n))
    (drop (call $sprintf (local.get $buf) (i32.const 16) (i32.const 256)))
    (drop (call $printf (i32.const 48) (i32.const 260)))
    (local.get $buf))
  (func (export "len") (param i32) (result i32) (call $strlen (local.get 0)))
  (func (export "release") (param i32) (call $free (local.get 0)))
  ;; Allocates until malloc returns 0; returns how many succeeded.
  (func (export "exhaust") (result i32) (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (call $malloc (i32.const 65536))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n)))
