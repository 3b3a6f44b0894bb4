"""Article pages as scraped news sites serve them: the story wrapped in site junk.

Built like the seed page in ../shared/seeds/ (a weather/date widget, "Buy now", the site's
section in the title, "Related Articles", a comment form, "Stay Connected", ad markers, "Latest
Articles"), plus navigation, a cookie banner, a newsletter box and a footer. The wording here is
our own. `JUNK` lists phrases of that wrapping that must never reach an extracted text.
"""

from __future__ import annotations

import html

RELATED = (
    "Ten gadgets you will want this winter",
    "Celebrity chef opens a third restaurant",
    "Why mortgage rates could fall again",
)
LATEST = ("Local team wins the regional cup", "Museum extends its opening hours")

JUNK = (
    "18.7 C",
    "Wednesday, September 27, 2023",
    "Buy now",
    "Political News",
    "Home World",  # the menu
    "Subscribe",
    "Related Articles",
    *RELATED,
    *LATEST,
    "Please enter your comment",
    "Please enter your name here",
    "Post Comment",
    "Stay Connected",
    "Advertisement",
    "spot_img",
    "Latest Articles",
    "Sign up for our newsletter",
    "We use cookies",
    "All rights reserved",
    "Followers",
)


def article_page(title: str, paragraphs: list[str], *, site: str = "Daily Wire Copy") -> str:
    """A complete HTML page whose main text is `paragraphs` (HTML-escaped here)."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    related = "".join(f'<li><a href="/related/{i}">{t}</a></li>' for i, t in enumerate(RELATED))
    latest = "".join(f'<li><a href="/latest/{i}">{t}</a></li>' for i, t in enumerate(LATEST))
    menu = "".join(
        f'<li><a href="/{w.lower()}">{w}</a></li>'
        for w in ("Home", "World", "Politics", "Business", "Subscribe")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} | Political News | {site}</title>
<script>window.dataLayer = [{{"event": "pageview"}}];</script>
<style>.ad {{ display: block }}</style>
</head><body>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept</button></div>
<header class="site-header">
  <div class="weather-widget"><span>18.7 C</span> <span>New York</span>
    <span>Wednesday, September 27, 2023</span></div>
  <a class="shop-button" href="/shop">Buy now</a>
  <nav class="main-menu"><ul>{menu}</ul></nav>
</header>
<div class="ad ad-top">- Advertisement -<img src="/ads/1.gif" alt="spot_img"></div>
<main>
<article class="post">
  <h1 class="entry-title">{html.escape(title)}</h1>
  <div class="byline">By Staff Writer</div>
  <div class="entry-content">
{body}
  </div>
</article>
<section class="related-posts"><h3>Related Articles</h3><ul>{related}</ul></section>
<div class="comments" id="respond">
  <h3>Leave a Reply</h3>
  <form action="/comment" method="post">
    <textarea placeholder="Please enter your comment!"></textarea>
    <input placeholder="Please enter your name here">
    <input placeholder="You have entered an incorrect email address!">
    <button>Post Comment</button>
  </form>
</div>
</main>
<aside class="sidebar">
  <div class="widget social"><h4>Stay Connected</h4><ul><li>12,345 Followers</li>
    <li>6,789 Subscribers</li></ul></div>
  <div class="ad ad-side">- Advertisement -spot_img</div>
  <div class="widget latest"><h4>Latest Articles</h4><ul>{latest}</ul></div>
  <div class="widget newsletter"><h4>Sign up for our newsletter</h4><input type="email"></div>
</aside>
<footer class="site-footer"><p>© 2026 {site}. All rights reserved.</p>
  <ul><li><a href="/about">About us</a></li><li><a href="/privacy">Privacy</a></li></ul>
</footer>
</body></html>
"""
