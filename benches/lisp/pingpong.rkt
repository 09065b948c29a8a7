#lang racket/base
;; n round trips between two threads over two unbuffered (rendezvous) channels: the main
;; thread sends i on ping, a second thread answers i + 1 on pong; the main thread sums the
;; answers (Racket: racket/base's make-channel, channel-put and channel-get are synchronous,
;; as OmniLisp's (make-chan) is).
(define n 100000)
(define ping (make-channel))
(define pong (make-channel))
(define (echo i) (when (< i n) (channel-put pong (+ (channel-get ping) 1)) (echo (+ i 1))))
(define echoer (thread (lambda () (echo 0))))
(define (serve i acc)
  (if (= i n) acc (begin (channel-put ping i) (serve (+ i 1) (+ acc (channel-get pong))))))
(display (serve 0 0))
(thread-wait echoer)
(newline)
