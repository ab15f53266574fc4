module gspc.example/memory

go 1.19
