// Tags, the clicks column and sorting in the console. app.js calls these
// hooks (window.ConsoleTags) at the points where it builds a list request,
// a row, a create or an edit; this file owns the controls it adds:
// #create-tags, #edit-tags, #filter-tag, #sort and the tag list in the filter.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  // "a, B c" -> ["a", "b", "c"]: commas or spaces separate tags.
  function parseTags(text) {
    return text
      .split(/[\s,]+/)
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t.length > 0);
  }

  const SORTS = {
    "created-desc": ["created", "desc"],
    "created-asc": ["created", "asc"],
    "clicks-desc": ["clicks", "desc"],
    "clicks-asc": ["clicks", "asc"],
    "slug-asc": ["slug", "asc"],
    "slug-desc": ["slug", "desc"],
  };

  window.ConsoleTags = {
    // The list request: the tag filter and the sort order.
    listParams(params) {
      const tag = $("filter-tag").value.trim().toLowerCase();
      if (tag) params.set("tag", tag);
      const [sort, order] = SORTS[$("sort").value] || SORTS["slug-asc"];
      params.set("sort", sort);
      params.set("order", order);
    },
    // A row of the list: its clicks and tags cells, before the actions.
    row(tr, link, actions) {
      const clicks = document.createElement("td");
      clicks.className = "clicks";
      clicks.dataset.label = "Clicks";
      clicks.textContent = String(link.clicks);
      const tags = document.createElement("td");
      tags.className = "tags";
      tags.dataset.label = "Tags";
      for (const tag of link.tags || []) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "tag small";
        b.textContent = tag;
        b.setAttribute("aria-label", `Show links tagged ${tag}`);
        b.addEventListener("click", () => window.ConsoleTags.filterBy(tag));
        tags.append(b);
      }
      tr.insertBefore(clicks, actions);
      tr.insertBefore(tags, actions);
    },
    filterBy(tag) {
      $("filter-tag").value = tag;
      $("filter-form").requestSubmit();
    },
    caption(text) {
      const tag = $("filter-tag").value.trim().toLowerCase();
      return tag ? `${text}, tagged “${tag}”` : text;
    },
    createBody(body) {
      const tags = parseTags($("create-tags").value);
      if (tags.length) body.tags = tags;
    },
    // The edit form shows the link's tags; a change is sent as a whole.
    showLink(link) {
      $("edit-tags").value = (link.tags || []).join(", ");
      $("link-tags").textContent = (link.tags || []).join(", ") || "none";
    },
    patch(patch, link) {
      const tags = parseTags($("edit-tags").value);
      if (tags.join(",") !== (link.tags || []).join(",")) patch.tags = tags.length ? tags : null;
    },
    // The filter's suggestions: every tag with its number of links.
    async loadTags(api) {
      const list = $("tag-options");
      try {
        const tags = await api("GET", "tags");
        list.replaceChildren(
          ...tags.map((t) => {
            const o = document.createElement("option");
            o.value = t.tag;
            o.label = `${t.tag} (${t.links})`;
            return o;
          }),
        );
      } catch (_err) {
        // Suggestions only; the filter works without them.
      }
    },
    wire(reload) {
      const again = (e) => {
        if (e) e.preventDefault();
        reload();
      };
      $("filter-form").addEventListener("submit", again);
      $("sort").addEventListener("change", () => reload());
      $("filter-clear").addEventListener("click", () => {
        $("filter-tag").value = "";
        reload();
      });
    },
  };
})();
