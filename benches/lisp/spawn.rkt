#lang racket/base
;; Spawn n threads, thread i returning i, keeping their handles; then join each in turn and
;; sum what they returned (Racket).
;;
;; A Racket thread has no result, so `spawn` pairs the thread with a box the thunk's value is
;; put in, and `task-join` is thread-wait then unbox: OmniLisp's spawn and task-join, spelled
;; with racket/base's thread and thread-wait.
(define (spawn thunk)
  (let ((b (box #f))) (cons (thread (lambda () (set-box! b (thunk)))) b)))
(define (task-join t) (thread-wait (car t)) (unbox (cdr t)))
(define n 100000)
(define (spawn-all i acc)
  (if (= i n) acc (spawn-all (+ i 1) (cons (let ((j i)) (spawn (lambda () j))) acc))))
(define (join-all ts acc) (if (null? ts) acc (join-all (cdr ts) (+ acc (task-join (car ts))))))
(display (join-all (spawn-all 0 '()) 0))
(newline)
