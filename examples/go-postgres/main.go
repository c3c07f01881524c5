// Command notes is the go-postgres example: a small web app that keeps
// notes in Postgres. One binary, four subcommands:
//
//	notes serve        the web app (the default)
//	notes migrate      apply migrations/*.sql that have not run yet, then exit
//	notes seed         insert sample notes into an empty database, then exit
//	notes healthcheck  exit 0 when the web app answers /healthz (for compose)
//
// It reads DATABASE_URL, and PUBLIC_URL for the links it prints; in a
// Slipway preview, PUBLIC_URL comes from SLIPWAY_URL (see compose.yaml).
package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

//go:embed migrations/*.sql
var migrations embed.FS

const listen = ":8080"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "healthcheck":
		err = healthcheck(ctx)
	case "serve", "migrate", "seed":
		var db *sql.DB
		db, err = open(ctx)
		if err != nil {
			break
		}
		defer db.Close()
		switch cmd {
		case "serve":
			err = serve(ctx, db, log)
		case "migrate":
			err = migrate(ctx, db, log)
		case "seed":
			err = seed(ctx, db, log)
		}
	default:
		err = fmt.Errorf("unknown command %q: want serve, migrate, seed or healthcheck", cmd)
	}
	if err != nil {
		log.Error(cmd+" failed", "err", err)
		os.Exit(1)
	}
}

// open connects to DATABASE_URL, retrying while the database starts.
func open(ctx context.Context) (*sql.DB, error) {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		return nil, errors.New("DATABASE_URL is not set")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("connect to database: %w", err)
		}
		time.Sleep(time.Second)
	}
}

// migrate applies each migrations/NNN_name.sql not yet recorded in
// schema_migrations, in name order, each in its own transaction.
func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var done bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil {
			return fmt.Errorf("check %s: %w", name, err)
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("apply %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
			tx.Rollback()
			return fmt.Errorf("record %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %s: %w", name, err)
		}
		log.Info("migration applied", "name", name)
	}
	return nil
}

// seed fills an empty notes table with sample data, so that a fresh
// preview has something to look at.
func seed(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n); err != nil {
		return fmt.Errorf("count notes: %w", err)
	}
	if n > 0 {
		log.Info("notes already present; not seeding", "count", n)
		return nil
	}
	for _, body := range []string{
		"Welcome to the preview of this pull request.",
		"Data here lives in this preview's own Postgres volume.",
		"Closing the pull request removes the preview and its data.",
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO notes (body) VALUES ($1)`, body); err != nil {
			return fmt.Errorf("insert sample note: %w", err)
		}
	}
	log.Info("sample notes inserted")
	return nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Notes</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
.banner{background:#fef3c7;padding:.5rem 1rem;border-radius:.5rem}</style></head>
<body>
{{if .PR}}<p class="banner">Preview of pull request #{{.PR}} ({{.SHA}}) at <a href="{{.URL}}">{{.URL}}</a></p>{{end}}
<h1>Notes</h1>
<form method="post" action="/notes"><input name="body" required maxlength="500" size="40"> <button>Add</button></form>
<ul>{{range .Notes}}<li>{{.Body}} <small>{{.Created.Format "2006-01-02 15:04"}}</small></li>{{end}}</ul>
</body></html>`))

type note struct {
	Body    string
	Created time.Time
}

func serve(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), `SELECT body, created_at FROM notes ORDER BY created_at DESC LIMIT 100`)
		if err != nil {
			log.Error("list notes", "err", err)
			http.Error(w, "cannot list notes", http.StatusInternalServerError)
			return
		}
		defer rows.Close()
		var notes []note
		for rows.Next() {
			var n note
			if err := rows.Scan(&n.Body, &n.Created); err != nil {
				http.Error(w, "cannot read notes", http.StatusInternalServerError)
				return
			}
			notes = append(notes, n)
		}
		sha := os.Getenv("SLIPWAY_SHA")
		if len(sha) > 7 {
			sha = sha[:7]
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, map[string]any{
			"Notes": notes, "PR": os.Getenv("SLIPWAY_PR"), "SHA": sha, "URL": os.Getenv("PUBLIC_URL"),
		})
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		body := strings.TrimSpace(r.FormValue("body"))
		if body == "" || len(body) > 500 {
			http.Error(w, "a note has 1 to 500 characters", http.StatusBadRequest)
			return
		}
		if _, err := db.ExecContext(r.Context(), `INSERT INTO notes (body) VALUES ($1)`, body); err != nil {
			log.Error("add note", "err", err)
			http.Error(w, "cannot add the note", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("listening", "addr", listen, "public_url", os.Getenv("PUBLIC_URL"))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func healthcheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1"+listen+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}
