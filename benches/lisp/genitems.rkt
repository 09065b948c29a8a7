#lang racket/base
;; A generator yielding 0, 1, ..., n-1, summed (Racket: racket/generator, continuations
;; underneath). gen-fold is OmniLisp's prelude one: call the generator, stop once it is done.
(require racket/generator)
(define n 100000)
(define (counter n)
  (generator () (let loop ((i 0)) (when (< i n) (yield i) (loop (+ i 1))))))
(define (gen-fold f acc g)
  (let loop ((acc acc))
    (let ((v (g))) (if (eq? (generator-state g) 'done) acc (loop (f acc v))))))
(display (gen-fold + 0 (counter n)))
(newline)
