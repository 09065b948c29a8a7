;; n prompt/control round trips (Guile 3): each iteration installs a prompt, captures the
;; continuation (+ 1 []) up to it, and resumes it once with i. Sums the results.
;;
;; Felleisen's prompt/control, built on Guile's (ice-9 control) primitives call-with-prompt
;; and abort-to-prompt, the way that module's own `%` and default-prompt-handler do it:
;;   control = (abort-to-prompt tag (lambda (k) body ...)): unwinds to the nearest prompt
;;             with that tag and hands its handler k, a composable continuation up to (not
;;             including) the prompt, which does not put a prompt back when called;
;;   prompt  = call-with-prompt whose handler runs (proc k) inside a prompt with the same
;;             tag put back (as Felleisen's control runs its body under the prompt).
;; Guile's shift would also put a prompt back around each call of k; control does not.
;; The tag is the symbol p: a Guile prompt tag may be any object, compared with eq?.
(use-modules (ice-9 control))
(define (call-with-control-prompt tag thunk)
  (call-with-prompt tag thunk
    (lambda (k proc) (call-with-control-prompt tag (lambda () (proc k))))))
(define-syntax-rule (prompt tag body ...)
  (call-with-control-prompt tag (lambda () body ...)))
(define-syntax-rule (control tag k body ...)
  (abort-to-prompt tag (lambda (k) body ...)))
(define n 100000)
(define (step i) (prompt 'p (+ 1 (control 'p k (k i)))))
(display (let loop ((i 0) (acc 0)) (if (= i n) acc (loop (+ i 1) (+ acc (step i))))))
(newline)
