;; Empty program: the startup cost of guile.
