// The API's address: in a preview the front end is served at
// pr-<N>.<domain> and the API at api-pr-<N>.<domain> (Slipway's host names
// for a second exposed service); locally, at localhost:3000.
const API = location.hostname.startsWith("pr-")
  ? `${location.protocol}//api-${location.host}`
  : `${location.protocol}//${location.hostname}:3000`;

document.getElementById("api").textContent = `API: ${API}`;

async function load() {
  const res = await fetch(`${API}/todos`);
  const todos = await res.json();
  const list = document.getElementById("todos");
  list.replaceChildren(...todos.map((t) => {
    const li = document.createElement("li");
    li.textContent = t.title;
    if (t.done) li.className = "done";
    li.onclick = async () => {
      await fetch(`${API}/todos/${t.id}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ done: !t.done }) });
      load();
    };
    return li;
  }));
}

document.getElementById("add").onsubmit = async (e) => {
  e.preventDefault();
  const title = new FormData(e.target).get("title");
  await fetch(`${API}/todos`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ title }) });
  e.target.reset();
  load();
};

load();
