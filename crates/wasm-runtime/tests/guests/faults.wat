;; Functions that fault in every way a guest can, plus a healthy one.
(module
  (memory (export "memory") 1 100)
  (func (export "ok") (result i32) i32.const 42)
  (func (export "spin") (loop $l br $l))
  ;; Runs for ages without a loop: only calls (2^n of them).
  (func $calls (export "calls") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.add (call $calls (i64.sub (local.get 0) (i64.const 1)))
                     (call $calls (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "oob") (result i32) i32.const 0x7ffffff0 i32.load)
  (func (export "div") (param i32) (result i32) i32.const 1 local.get 0 i32.div_s)
  (func $recurse (export "recurse") (result i32) call $recurse i32.const 1 i32.add)
  (func (export "unreachable") unreachable)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store))
