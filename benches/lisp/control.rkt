#lang racket/base
;; n prompt/control round trips (Racket): each iteration installs a prompt, captures the
;; continuation (+ 1 []) up to it, and resumes it once with i. Sums the results.
;;
;; Felleisen's prompt/control with a tag, from racket/control: prompt-at and control-at (the
;; tagged forms of prompt and control). Racket tags are made with make-continuation-prompt-tag,
;; not symbols, so the tag p is one made once at module level.
(require racket/control)
(define p (make-continuation-prompt-tag 'p))
(define n 100000)
(define (step i) (prompt-at p (+ 1 (control-at p k (k i)))))
(display (let loop ((i 0) (acc 0)) (if (= i n) acc (loop (+ i 1) (+ acc (step i))))))
(newline)
