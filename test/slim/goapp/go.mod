module example.com/corpus/goapp

go 1.21
