module example.invalid/flbexec

go 1.21
