"""The chat page in headless Chromium (driven by Playwright), against the real daemon.

Run by tests/tests/ui.rs, which starts the daemons and the registry and passes:
BASE_URL (a daemon with stories260K as `stories`), KEYED_URL and API_KEY (a daemon that
asks for that key), PULL_REF (a model in the registry that BASE_URL's store lacks, slow
enough to stop mid-answer), CHROMIUM (the browser) and SHOTS (where screenshots go).

Checked: the model list; a streamed answer with its token speed; a reasoning model's
thoughts shown apart from the answer; markdown rendered
without ever parsing model text as HTML; a pull whose bars move and reach 100%; stopping
a long answer (and the daemon stops generating); conversations surviving a reload; the
dark theme; a phone's viewport; the API-key prompt; no request to another origin and no
script error throughout.
"""

import json
import os
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["BASE_URL"]
KEYED = os.environ["KEYED_URL"]
KEY = os.environ["API_KEY"]
PULL_REF = os.environ["PULL_REF"]
SHOTS = os.environ["SHOTS"]
LONG = 120_000  # ms: generous waits for slow CI machines (waits, not assertions on time)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def watch(page, origin, problems, console=True):
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    if console:
        page.on(
            "console",
            lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
    page.on(
        "request",
        lambda r: None if r.url.startswith(origin) else problems.append(f"request elsewhere: {r.url}"),
    )


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def busy_runners():
    with urllib.request.urlopen(BASE + "/engines/ps") as r:
        return [x for x in json.load(r) if x["in_use"]]


MARKDOWN_PROBE = """async () => {
  const m = await import('/ui/markdown.js');
  const host = document.createElement('div');
  host.append(m.render('<img src=x onerror="window.pwned=1"> **bold** and `<b>code</b>`\\n' +
    '[bad](javascript:window.pwned=2) [good](https://example.com/)\\n\\n' +
    '- one\\n- two\\n\\n```js\\nlet a = "<script>";\\n```\\n\\n```py\\nunclosed'));
  document.body.append(host);
  await new Promise((r) => setTimeout(r, 50));
  const out = {
    imgs: host.querySelectorAll('img, script').length,
    strong: host.querySelectorAll('strong').length,
    inline: host.querySelector('p code')?.textContent,
    items: host.querySelectorAll('ul li').length,
    blocks: [...host.querySelectorAll('pre code')].map((c) => c.textContent),
    links: [...host.querySelectorAll('a')].map((a) => a.getAttribute('href')),
    text: host.textContent,
    pwned: window.pwned ?? null,
  };
  host.remove();
  return out;
}"""


def main():
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ["CHROMIUM"],
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        page = ctx.new_page()
        watch(page, BASE, problems)

        # The page, with its policy, lists the model with its facts.
        response = page.goto(BASE + "/")
        csp = response.headers["content-security-policy"]
        check("default-src 'none'" in csp and "connect-src 'self'" in csp, csp)
        row = page.locator('#models tr[data-model$="/stories:latest"]')
        expect(row).to_be_visible(timeout=LONG)
        expect(row).to_contain_text("2,048")
        stories = "docker.io/ai/stories:latest"
        expect(page.locator(f'#model option[value="{stories}"]')).to_have_count(1)
        page.select_option("#model", value=stories)
        shot(page, "models")

        # Markdown, in the browser: structure without HTML from the text.
        md = page.evaluate(MARKDOWN_PROBE)
        check(md["imgs"] == 0 and md["pwned"] is None, f"HTML got through: {md}")
        check(md["strong"] == 1 and md["inline"] == "<b>code</b>" and md["items"] == 2, md)
        check(md["blocks"] == ['let a = "<script>";', "unclosed"], md)
        check(md["links"] == ["https://example.com/"], md)
        check('<img src=x onerror="window.pwned=1">' in md["text"], md)

        # A streamed answer, with its speed.
        page.fill("#prompt", "Once upon a time")
        page.press("#prompt", "Enter")
        expect(page.locator("li.msg.user")).to_have_text("Once upon a time")
        done = page.locator("li.msg.assistant:not([data-streaming]) .meta")
        expect(done).to_contain_text("tokens/s", timeout=LONG)
        story = page.locator("li.msg.assistant .content").last.text_content()
        check(story.strip(), "the answer is empty")
        shot(page, "answer")

        # A reasoning model's thoughts, shown apart from its answer.
        page.click("#new-chat")
        page.select_option("#model", value="docker.io/ai/thinker:latest")
        page.click("#toggle-settings")
        page.fill("#max_tokens", "16")
        # Not JSON: the page says so and sends nothing.
        page.fill("#extra", "{enable_thinking")
        page.fill("#prompt", "Think about a cat")
        page.press("#prompt", "Enter")
        expect(page.locator("#notice")).to_contain_text("not JSON")
        check(page.locator("li.msg").count() == 0, "a message went out with bad extra fields")
        # QwQ's template thinks when asked to.
        page.fill("#extra", '{"chat_template_kwargs": {"enable_thinking": true}}')
        page.press("#prompt", "Enter")
        expect(page.locator("li.msg.assistant:not([data-streaming]) .meta").last).to_contain_text(
            "16 tokens", timeout=LONG
        )
        thinking = page.locator("li.msg.assistant .thinking").last
        expect(thinking.locator("summary")).to_have_text("Thinking")
        check(thinking.locator("div").text_content().strip(), "the thoughts are empty")
        shot(page, "thinking")
        page.fill("#extra", "")

        # A pull: each layer's bar moves, then everything reaches 100%.
        page.evaluate(
            """() => {
              window.seen = [];
              new MutationObserver((records) => {
                for (const r of records) {
                  const t = r.target;
                  if (t.tagName === 'PROGRESS' && t.closest('.layer')) window.seen.push([+t.value, +t.max]);
                }
              }).observe(document.getElementById('pull-layers'), {subtree: true, attributes: true, attributeFilter: ['value']});
            }"""
        )
        page.fill("#pull-ref", PULL_REF)
        page.click("#pull button[type=submit]")
        expect(page.locator("#pull-status")).to_contain_text("100%", timeout=LONG)
        expect(page.locator("#pull-status")).not_to_contain_text("failed")
        bars = page.evaluate(
            "() => [...document.querySelectorAll('#pull-layers progress')].map(b => [b.value, b.max])"
        )
        check(bars and all(v == m for v, m in bars), f"layers not complete: {bars}")
        seen = page.evaluate("() => window.seen")
        check(any(0 < v < m for v, m in seen), f"no partial progress was drawn: {seen[:10]}")
        name = PULL_REF.split("/", 1)[1].replace(":v1", "")
        pulled = page.locator(f'#models tr[data-model*="{name}"]')
        expect(pulled).to_be_visible()
        shot(page, "pulled")

        # A long answer, streamed then stopped; the daemon stops generating.
        page.click("#new-chat")
        page.select_option("#model", value=pulled.get_attribute("data-model"))
        page.fill("#max_tokens", "1500")
        page.fill("#prompt", "Tell me a very long story")
        page.press("#prompt", "Enter")
        streaming = page.locator("li.msg.assistant[data-streaming] .content")
        expect(streaming).not_to_be_empty(timeout=LONG)
        expect(page.locator("#stop")).to_be_visible()
        page.click("#stop")
        expect(page.locator("li.msg.assistant[data-streaming]")).to_have_count(0, timeout=LONG)
        stopped = page.locator("li.msg.assistant").last
        expect(stopped.locator(".meta")).to_contain_text("stopped")
        expect(page.locator("#send")).to_be_visible()
        partial = stopped.locator(".content").text_content()
        check(partial.strip(), "nothing was kept of the stopped answer")
        for _ in range(600):
            if not busy_runners():
                break
            time.sleep(0.1)
        check(not busy_runners(), f"still generating after stop: {busy_runners()}")
        shot(page, "stopped")

        # The conversations survive a reload, the current one shown again.
        page.reload()
        expect(page.locator("#conversations li")).to_have_count(3, timeout=LONG)
        expect(page.locator("li.msg.assistant .content").last).to_have_text(partial)
        page.locator("#conversations li", has_text="Once upon a time").locator(".title").click()
        expect(page.locator("li.msg.assistant .content").last).to_have_text(story)
        shot(page, "reloaded")

        # The dark theme, remembered.
        page.click("#theme")
        check(page.evaluate("() => document.documentElement.dataset.theme") == "dark", "not dark")
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        check(background == "rgb(21, 24, 29)", f"dark background is {background}")
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        shot(page, "dark")
        ctx.close()

        # A phone: nothing wider than the screen; the side panel opens on demand.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = phone.new_page()
        watch(page, BASE, problems)
        page.goto(BASE + "/")
        expect(page.locator(f'#model option[value="{stories}"]')).to_have_count(1, timeout=LONG)
        check(not page.locator("#side").is_visible(), "the side panel covers the phone's screen")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        check(width <= 390, f"the page is {width}px wide on a 390px screen")
        expect(page.locator("#prompt")).to_be_visible()
        page.click("#toggle-side")
        expect(page.locator("#side")).to_be_visible()
        shot(page, "phone")
        phone.close()

        # A daemon with keys: the page says so, asks, and then works.
        keyed = browser.new_context(viewport={"width": 1000, "height": 700})
        page = keyed.new_page()
        # The 401s are expected here, and Chromium logs each one to the console.
        watch(page, KEYED, problems, console=False)
        page.goto(KEYED + "/")
        expect(page.locator("#key-dialog")).to_be_visible(timeout=LONG)
        expect(page.locator("#key-reason")).to_contain_text("401")
        expect(page.locator("#notice")).to_contain_text("API key")
        page.fill("#key", KEY)
        page.click("#key-save")
        expect(page.locator('#models tr[data-model$="/stories:latest"]')).to_be_visible(timeout=LONG)
        expect(page.locator("#notice")).to_be_hidden()
        shot(page, "key")
        keyed.close()
        browser.close()
    check(not problems, "\n".join(problems))
    print("page: all checks passed")


if __name__ == "__main__":
    main()
