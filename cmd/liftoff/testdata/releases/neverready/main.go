// Command neverready is a broken release for the e2e tests: it is alive
// (GET /health answers 200) but never ready (GET /ready answers 503), as an
// app whose dependency never comes up.
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	http.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"waiting for the search index (test release neverready)"}`, http.StatusServiceUnavailable)
	})
	log.Printf("listening on %s, never ready", os.Getenv("LISTEN_ADDR"))
	log.Fatal(http.ListenAndServe(os.Getenv("LISTEN_ADDR"), nil))
}
