module github.com/sesscache/sesscache/adapters/gorilla

go 1.26

require (
	github.com/gorilla/sessions v1.4.0
	github.com/sesscache/sesscache v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	golang.org/x/sync v0.22.0 // indirect
)

// The engine is developed in the same repository: build against it.
replace github.com/sesscache/sesscache => ../..
