#lang racket/base
;; Empty program: the startup cost of racket (racket/base loaded).
