;; Naive doubly recursive fib: non-tail calls and integer arithmetic (Guile 3).
(define n 30)
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(display (fib n))
(newline)
