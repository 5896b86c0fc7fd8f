;; As counter_command.wat, with a start function that counts too: a module with one cannot
;; be rewound (its start function must run again), so each run gets a new instance; it
;; must print "g1 m1 s2" every time.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 16) "g0 m0 s0\n")
  (func $start (global.set $g (i32.add (global.get $g) (i32.const 1))))
  (start $start)
  (func (export "_start")
    (i32.store8 (i32.const 100) (i32.add (i32.load8_u (i32.const 100)) (i32.const 1)))
    (drop (memory.grow (i32.const 1)))
    (i32.store8 (i32.const 17) (i32.add (i32.const 48) (global.get $g)))
    (i32.store8 (i32.const 20) (i32.add (i32.const 48) (i32.load8_u (i32.const 100))))
    (i32.store8 (i32.const 23) (i32.add (i32.const 48) (memory.size)))
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
