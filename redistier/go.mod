module github.com/sesscache/sesscache/redistier

go 1.26

require (
	github.com/redis/rueidis v1.0.79
	github.com/sesscache/sesscache v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/sesscache/sesscache => ../
