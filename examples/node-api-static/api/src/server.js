// A small JSON API with no dependencies: todos kept in memory.
//   GET /todos, POST /todos {title}, PATCH /todos/:id {done}, GET /healthz
const http = require("node:http");

const port = Number(process.env.PORT || 3000);
const allowedOrigin = process.env.ALLOWED_ORIGIN || "http://localhost:8080";
const todos = [{ id: 1, title: `Review pull request #${process.env.SLIPWAY_PR || "?"}`, done: false }];
let nextId = 2;

function send(res, status, body) {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": allowedOrigin,
    "Access-Control-Allow-Methods": "GET, POST, PATCH",
    "Access-Control-Allow-Headers": "Content-Type",
    Vary: "Origin",
  });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

function readJSON(req) {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (chunk) => {
      data += chunk;
      if (data.length > 64 * 1024) reject(new Error("body too large"));
    });
    req.on("end", () => {
      try { resolve(data ? JSON.parse(data) : {}); } catch (err) { reject(err); }
    });
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://api");
  try {
    if (req.method === "OPTIONS") return send(res, 204);
    if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, { ok: true });
    if (req.method === "GET" && url.pathname === "/todos") return send(res, 200, todos);
    if (req.method === "POST" && url.pathname === "/todos") {
      const { title } = await readJSON(req);
      if (typeof title !== "string" || !title.trim() || title.length > 200) return send(res, 400, { error: "title: 1 to 200 characters" });
      const todo = { id: nextId++, title: title.trim(), done: false };
      todos.push(todo);
      return send(res, 201, todo);
    }
    const m = url.pathname.match(/^\/todos\/(\d+)$/);
    if (req.method === "PATCH" && m) {
      const todo = todos.find((t) => t.id === Number(m[1]));
      if (!todo) return send(res, 404, { error: "no such todo" });
      const { done } = await readJSON(req);
      todo.done = Boolean(done);
      return send(res, 200, todo);
    }
    send(res, 404, { error: "not found" });
  } catch (err) {
    send(res, 400, { error: String(err.message || err) });
  }
});

server.listen(port, () => console.log(JSON.stringify({ msg: "listening", port, allowedOrigin })));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
