#lang racket/base
;; A named-let tail loop of n iterations, summing its counter (Racket).
(define n 10000000)
(display (let loop ((i 0) (acc 0)) (if (= i n) acc (loop (+ i 1) (+ acc i)))))
(newline)
