// Command smoke500 is a broken release for the e2e tests: it is alive and
// ready, so it passes every probe, but answers 500 on the API routes the
// smoke test uses, as a release with a broken query does.
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	http.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ready"}`)) })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s: column \"username\" does not exist (test release smoke500)", r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"internal error"}`))
	})
	log.Fatal(http.ListenAndServe(os.Getenv("LISTEN_ADDR"), nil))
}
