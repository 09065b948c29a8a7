;; Build the list (1 2 ... n) with cons in a tail loop, then sum it with car/cdr (Guile 3).
(define n 1000000)
(define (build i acc) (if (= i 0) acc (build (- i 1) (cons i acc))))
(define (sum xs acc) (if (null? xs) acc (sum (cdr xs) (+ acc (car xs)))))
(display (sum (build n '()) 0))
(newline)
