// Command echo is a tiny HTTP server for the real test node's own tests: it
// answers GET / with its pod name, GET /resolve?name=N with the addresses N
// resolves to (the cluster DNS, seen from a pod), GET /get?url=U with what U
// answered (pod-to-Service traffic), and logs one line per request.
// `server dial HOST:PORT` (run by exec) says whether a TCP connection from
// the pod is answered: "open", "refused" or "timeout" (a NetworkPolicy
// drops it).
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "dial" {
		c, err := net.DialTimeout("tcp", os.Args[2], 3*time.Second)
		switch {
		case err == nil:
			c.Close()
			fmt.Println("open")
		case os.IsTimeout(err):
			fmt.Println("timeout")
		default:
			fmt.Println("refused:", err)
		}
		return
	}
	host, _ := os.Hostname()
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("request %s %s", r.Method, r.URL.Path)
		fmt.Fprintln(w, host)
	})
	mux.HandleFunc("/resolve", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.LookupHost(r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})
	log.Printf("listening on :8080 as %s", host)
	log.Fatal(http.ListenAndServe(":8080", mux))
}
