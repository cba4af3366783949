"""Benign traffic: forms people fill in, with prose, punctuation and emoji.

Writes ``benign/0002-forms.yaml`` (kind ``forms``): contact messages sent three
ways (a classic urlencoded form, an SPA's JSON call, a WordPress Contact Form 7
multipart post), checkout address forms, sign-up and log-in forms with real
framework fields, rich-text editor HTML, bracketed form APIs (Stripe-, Twilio-,
Mailgun-style) and assorted everyday forms.
"""

# Real text has en dashes and other look-alike characters: keep them.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

from benign_lib import (
    CHROME_UA,
    FIREFOX_UA,
    IPHONE_UA,
    PEOPLE,
    SAFARI_UA,
    api_headers,
    basic,
    benign,
    form,
    js,
    multipart,
    req,
    site_headers,
    token,
    xhr_headers,
)
from common import write

KIND = "forms"
URLENCODED = "application/x-www-form-urlencoded"

MESSAGES = [
    "Hi there! I'd like to know if you ship to Canada? (Vancouver, BC) Thanks :)",
    "Your \"Contact us\" page says 9-5, but nobody picked up at 10:30am today... is the number "
    "(555) 010-0199 still right?",
    "Order #10482 arrived damaged -- the box was crushed & the mug's handle snapped off. "
    "Photos available on request.",
    "Love the new site!!! 😍😍 One thing: the 'select a size' drop-down is hard to use on my "
    "phone (iPhone 15, Safari).",
    "Can I change the delivery address for order 10491? New address: 22 O'Connell St., "
    "Apt. 3/B, Limerick V94 X2Y3.",
    "Please unsubscribe me from ALL e-mails. I've clicked \"unsubscribe\" 3 times; still "
    "getting them. >:(",
    "Do you offer discounts for schools/non-profits? We'd need ~50 units (sizes S-XL).",
    "Question re: returns -- is it 30 days from delivery or from purchase? Your FAQ says "
    "both?!",
    "I'm 6'2\" & 210 lbs: would an XL or XXL fit better? Chest is 46\".",
    "Gift message: 'To the world's best mum -- love you to the moon & back <3'",
    "Can you confirm the table is 30\" high? I need it to fit under a 29½\" window sill.",
    "Hello, I'm writing on behalf of Smith & Sons, Inc. re: invoice INV-2024/0113 (€1,250.00, "
    "due 15.11.2024). Could you resend it with our VAT no. IE6388047V?",
    "Not a complaint, just feedback: checkout took 12 clicks. Amazon does it in 2. Just "
    "sayin' ¯\\_(ツ)_/¯",
    "The promo code SPRING-15 says \"invalid\" -- I'm definitely before the 31st. Help? 🙏",
    "Where's my order?? Tracking (1Z999AA10123456784) hasn't updated since Mon.",
    "P.S. your newsletter's \"Top 10\" list only had 9 items ;-)",
    "Re: the blog post \"5 myths about drop shipping\" -- #3 is wrong IMHO; margins are "
    "15–30%, not 50%.",
    "Hi! Does the skillet work on induction? & is it OK in the oven at 500°F / 260°C?",
    "My name has an apostrophe (D'Angelo) and your sign-up form keeps rejecting it... which "
    "is why I'm using this one instead.",
    "Received the wrong item: ordered 'Union Jack flag 3x5' but got a 2x3 one. Can you swap "
    "it?",
    "We're planning an event on 12/14 for 120 people; can you do a bulk order w/ custom "
    "printing (logo + text \"Rock & Roll Reunion '24\")?",
    "Thx for the quick reply yesterday!! Issue solved. 10/10 service.",
    "Can't log in: \"Error 403 - Forbidden\" after resetting my password. Tried Chrome + "
    "Firefox; cleared cookies.",
    "Is the 1' tall plant pet-safe? I have 2 cats 🐈🐈",
    "Could you please update my phone number to +44 (0)20 7946 0958? The old one "
    "(07700 900123) no longer works.",
    "Feature request: dark mode pls. My eyes @ 2am would thank you.",
    "The \"Size guide\" link on https://shop.example.com/products/tsh-rock-blk-m?variant=40001 "
    "goes to a 404.",
    "Your site says 'In stock' but the cart says 'Only 0 left' -- which is it? lol",
    "Hi, I'm Seán; you've got my name as \"Se?n\" on the label. Not a big deal but FYI.",
    "Please cancel order #10499 if it hasn't shipped yet; I ordered the wrong colour (navy, "
    "not black). Cheers!",
    "Suggestion: add a 'drop shipping' option for resellers like us (we're in Manchester, UK).",
    "If I order before 2pm, will it arrive by Fri? Need it for my son's b-day party on Sat!",
    "Is there a way to delete my account & all data (GDPR Art. 17)? Thanks in advance.",
    "Your Terms (§4.2) say refunds go to 'the original payment method' -- my card's expired; "
    "what then?",
    "Can I pay by bank transfer / SEPA? Or PayPal?",
    "I think there's a typo on the About page: \"recieve\" -> \"receive\". Otherwise lovely "
    "site :)",
    "1) Order #10501 – missing item\n2) Order #10502 – OK\n3) Order #10503 – wrong size (M "
    "instead of L)\nCould you check 1 & 3?",
    "Dear team,\n\nI'd like to apply for the wholesale program. Our store: \"The Green Corner\" "
    "(est. 2015), 2 locations.\n\nBest regards,\nPriya",
    "Just wanted to say: best customer service ever!!! ⭐⭐⭐⭐⭐ #happycustomer @ExampleShop",
    "Is 50% off + free shipping stackable? The banner says \"up to 50% off*\" -- what's the "
    "asterisk?",
    "Bought \"JavaScript: The Good Parts\" -- pages 101-116 are printed twice. Replacement?",
    "Select a size: there's no option for 'XS' though the size chart lists it. Bug or sold "
    "out?",
]
SUBJECTS = ["Shipping question", "Order problem", "Feedback", "Returns", "Other"]


def _nav_post(host: str, path_from: str, ua: str = CHROME_UA) -> dict[str, str]:
    """Headers of a form submission that navigates (Chrome-like)."""
    return site_headers(host, ua=ua, Origin=f"https://{host}", Referer=f"https://{host}{path_from}",
                        Cache_Control="max-age=0", Upgrade_Insecure_Requests="1",
                        Sec_Fetch_Site="same-origin", Sec_Fetch_Mode="navigate",
                        Sec_Fetch_User="?1", Sec_Fetch_Dest="document")


def contact_messages() -> list[dict[str, Any]]:
    out = []
    for i, msg in enumerate(MESSAGES):
        p = PEOPLE[i % len(PEOPLE)]
        name, subject = f"{p['first']} {p['last']}", SUBJECTS[i % len(SUBJECTS)]
        body = form([("_token", token(f"csrf{i}", 40)), ("name", name), ("email", p["email"]),
                     ("phone", p["phone"]), ("subject", subject), ("message", msg),
                     ("consent", "on")])
        out.append(benign(req("POST", "/contact", _nav_post("shop.example.com", "/contact"),
                              body, URLENCODED), KIND, "contact form: " + msg,
                          "placement:form"))
        body = js({"name": name, "email": p["email"], "subject": subject, "message": msg,
                   "consent": True, "source": "contact-page", "locale": "en-US"})
        out.append(benign(req("POST", "/api/contact", xhr_headers(
            "www.example.com", ua=[CHROME_UA, SAFARI_UA, FIREFOX_UA][i % 3]), body,
            "application/json"), KIND, "SPA contact form (JSON): " + msg, "placement:json"))
        ctype, mbody = multipart([
            ("_wpcf7", "42"), ("_wpcf7_version", "5.9.8"), ("_wpcf7_locale", "en_US"),
            ("_wpcf7_unit_tag", "wpcf7-f42-p13-o1"), ("_wpcf7_container_post", "13"),
            ("_wpcf7_posted_data_hash", ""), ("your-name", name), ("your-email", p["email"]),
            ("your-subject", subject), ("your-message", msg), ("acceptance-gdpr", "1")])
        out.append(benign(req("POST", "/wp-json/contact-form-7/v1/contact-forms/42/feedback",
                              xhr_headers("blog.example.org", ua=[IPHONE_UA, CHROME_UA][i % 2]),
                              mbody, ctype), KIND, "WordPress contact form (multipart): " + msg,
                          "placement:multipart"))
    return out


DELIVERY_NOTES = [
    "Leave at back door -- dog's friendly!", "Buzz #4B; if no answer, leave w/ concierge.",
    "Ring twice (bell's weak). No deliveries before 9:00.", "", "Gate code: 1234# (thanks!)",
    "Deliver to the side entrance (blue door), not the shop front.", "Fragile :) handle w/ care",
    "Call on arrival: +1 (555) 010-0123", "Hinterhof, 2. OG rechts", "N/A",
]


def checkout_forms() -> list[dict[str, Any]]:
    out = []
    for i, p in enumerate(PEOPLE):
        pairs = [("_method", "patch"), ("authenticity_token", token(f"auth{i}", 86) + "=="),
                 ("previous_step", "contact_information"), ("step", "shipping_method"),
                 ("checkout[email]", p["email"]), ("checkout[buyer_accepts_marketing]", "0"),
                 ("checkout[shipping_address][first_name]", p["first"]),
                 ("checkout[shipping_address][last_name]", p["last"]),
                 ("checkout[shipping_address][company]", p["company"]),
                 ("checkout[shipping_address][address1]", p["street"]),
                 ("checkout[shipping_address][address2]", ["Apt. #4B", "", "c/o Reception",
                                                          "Bldg 7, Floor 3"][i % 4]),
                 ("checkout[shipping_address][city]", p["city"]),
                 ("checkout[shipping_address][country]", p["country"]),
                 ("checkout[shipping_address][province]", p["region"]),
                 ("checkout[shipping_address][zip]", p["zip"]),
                 ("checkout[shipping_address][phone]", p["phone"]),
                 ("checkout[note]", DELIVERY_NOTES[i]), ("checkout[remember_me]", "false"),
                 ("checkout[client_details][browser_width]", str(1280 + i * 16)),
                 ("checkout[client_details][browser_height]", "720"),
                 ("checkout[client_details][javascript_enabled]", "1"),
                 ("checkout[client_details][color_depth]", "24"),
                 ("checkout[client_details][java_enabled]", "false"),
                 ("checkout[client_details][browser_tz]", str(-60 * (i % 3)))]
        out.append(benign(req("POST", f"/12345678/checkouts/{token(f'co{i}', 32)}",
                              _nav_post("shop.example.com", "/checkout", [CHROME_UA, SAFARI_UA,
                                                                          FIREFOX_UA][i % 3]),
                              form(pairs), URLENCODED), KIND,
                          f"checkout shipping address: {p['first']} {p['last']}, {p['city']}",
                          "placement:form"))
    return out


def account_forms() -> list[dict[str, Any]]:
    out = []
    wp = form([("log", "siobhan.obrien"), ("pwd", "Tr0ub4dor&3 'quoted'"),
               ("rememberme", "forever"), ("wp-submit", "Log In"),
               ("redirect_to", "https://blog.example.org/wp-admin/"), ("testcookie", "1")])
    out.append(("WordPress log-in form", req("POST", "/wp-login.php", {
        **_nav_post("blog.example.org", "/wp-login.php"),
        "Cookie": "wordpress_test_cookie=WP%20Cookie%20check"}, wp, URLENCODED)))
    dj = form([("csrfmiddlewaretoken", token("dj", 64)), ("username", "jl.lefevre"),
               ("password", "p@$$w0rd#2024!"), ("next", "/dashboard/?tab=orders&page=2")])
    out.append(("Django log-in form with next=", req("POST", "/accounts/login/", {
        **_nav_post("app.example.fr", "/accounts/login/?next=/dashboard/%3Ftab%3Dorders"),
        "Cookie": f"csrftoken={token('djc', 32)}"}, dj, URLENCODED)))
    rails = form([("utf8", "✓"), ("authenticity_token", token("rails", 86) + "=="),
                  ("user[email]", "dwayne.dangelo@example.com"),
                  ("user[password]", "Kx9#mZ!2qL&v'<>"), ("user[remember_me]", "1"),
                  ("commit", "Log in")])
    out.append(("Rails (Devise) log-in form with utf8=✓", req("POST", "/users/sign_in",
                _nav_post("app.example.com", "/users/sign_in"), rails, URLENCODED)))
    reg = form([("_token", token("lar", 40)), ("name", "María José Núñez-García"),
                ("email", "mj.nunez@example.es"), ("password", "correct horse battery staple"),
                ("password_confirmation", "correct horse battery staple"),
                ("terms", "on"), ("newsletter", "1"), ("referral", "a friend (Zoë)")])
    out.append(("Laravel registration form", req("POST", "/register",
                _nav_post("www.example.es", "/register", FIREFOX_UA), reg, URLENCODED)))
    aspnet = form([("__VIEWSTATE", "/wEPDwUKMTY3NzE5MjIyMA9kFgJmD2QWAgIDD2QWAgIBDxYCHgRUZXh0BQ"
                                   + token("vs", 120) + "=="),
                   ("__VIEWSTATEGENERATOR", "C2EE9ABB"),
                   ("__EVENTVALIDATION", "/wEdAAS" + token("ev", 80) + "="),
                   ("ctl00$MainContent$txtUser", "t.wisniewski"),
                   ("ctl00$MainContent$txtPassword", "Zażółć-gęślą-jaźń!2024"),
                   ("ctl00$MainContent$chkRemember", "on"),
                   ("ctl00$MainContent$btnLogin", "Zaloguj się")])
    out.append(("ASP.NET WebForms log-in postback (__VIEWSTATE)", req(
        "POST", "/Account/Login.aspx", _nav_post("intranet.example.pl", "/Account/Login.aspx",
                                                 FIREFOX_UA), aspnet, URLENCODED)))
    pwchange = js({"current_password": "hunter2 (old one!)", "new_password": "N3w-P@ss; w0rd?",
                   "new_password_confirmation": "N3w-P@ss; w0rd?", "logout_other_sessions": True})
    out.append(("change password (JSON)", req("POST", "/api/v1/account/password", xhr_headers(
        "app.example.io", X_CSRF_Token=token("csrfpw", 43)), pwchange, "application/json")))
    reset = form([("authenticity_token", token("rst", 86) + "=="),
                  ("user[email]", "zoe@angstrom.example.se"), ("commit", "Send me reset "
                                                                         "password instructions")])
    out.append(("password reset request", req("POST", "/users/password", _nav_post(
        "app.example.com", "/users/password/new", SAFARI_UA), reset, URLENCODED)))
    oauth = form([("grant_type", "authorization_code"), ("code", token("code", 43)),
                  ("redirect_uri", "https://app.example.io/auth/callback"),
                  ("client_id", "web-app"), ("code_verifier", token("ver", 64))])
    out.append(("OAuth token exchange (PKCE) from an SPA", req("POST", "/oauth2/token",
                xhr_headers("auth.example.com", origin="https://app.example.io"), oauth,
                URLENCODED)))
    return [benign(inp, KIND, desc, "placement:form") for desc, inp in out]


RICH_TEXT = [
    ("WordPress comment with allowed tags",
     "<strong>Great</strong> tip! I'd add: run <code>git stash</code> first, otherwise you "
     "lose local changes. See <a href=\"https://git-scm.com/docs/git-stash\">the docs</a>."),
    ("TinyMCE: announcement with list and bold",
     "<p>Hi all,</p>\n<p>The meeting moved to <strong>Thu 3pm</strong> (Room 4.12).</p>\n"
     "<ul>\n<li>Bring laptops &amp; chargers</li>\n<li>Agenda: Q3 numbers, hiring</li>\n</ul>\n"
     "<p>Thanks!<br>— Jane</p>"),
    ("CKEditor: blog post with an image and a link",
     "<h2>Our new store is open!</h2><p>After 6 months of work, we're live at "
     "<a href=\"https://maps.example.com/?q=22+O%27Connell+St\" target=\"_blank\" "
     "rel=\"noopener noreferrer\">22 O'Connell St.</a> 🎉</p><figure class=\"image\">"
     "<img src=\"https://cdn.example.com/uploads/2024/11/storefront.jpg\" alt=\"Our storefront "
     "on a sunny day\" width=\"1200\" height=\"800\"><figcaption>Opening day</figcaption>"
     "</figure>"),
    ("Quill: product description with colours and a table",
     "<p><span style=\"color: rgb(230, 0, 0);\">Sale!</span> Solid oak, seats 2–6.</p>"
     "<table><tbody><tr><td>Width</td><td>90 cm (35½\")</td></tr><tr><td>Height</td>"
     "<td>76 cm (30\")</td></tr></tbody></table><p class=\"ql-align-center\"><em>Assembly "
     "required.</em></p>"),
    ("forum post from a WYSIWYG editor with a quote",
     "<blockquote><p>Does anyone know if the 1' tall plant survives low light?</p>"
     "<cite>— @plantlover</cite></blockquote><p>Mine's been fine in a north-facing room for 8 "
     "months. Water every ~2 weeks.</p>"),
    ("newsletter editor: email HTML with inline styles",
     "<div style=\"max-width:600px;margin:0 auto;font-family:Helvetica,Arial,sans-serif\">"
     "<h1 style=\"font-size:24px\">Spring Sale — up to 50% off*</h1><p>Hi {{first_name}},</p>"
     "<p><a href=\"https://shop.example.com/sale?utm_source=newsletter&amp;utm_medium=email\" "
     "style=\"background:#111;color:#fff;padding:12px 20px;text-decoration:none\">Shop now"
     "</a></p><p style=\"font-size:11px;color:#888\">*On selected items. <a href=\"{{"
     "unsubscribe_url}}\">Unsubscribe</a></p></div>"),
]


def rich_text_forms() -> list[dict[str, Any]]:
    out = []
    for i, (desc, html) in enumerate(RICH_TEXT):
        p = PEOPLE[(i + 3) % len(PEOPLE)]
        body = form([("comment", html), ("author", f"{p['first']} {p['last']}"),
                     ("email", p["email"]), ("url", "https://example.net/~" + p["first"].lower()),
                     ("submit", "Post Comment"), ("comment_post_ID", str(1180 + i)),
                     ("comment_parent", "0"),
                     ("akismet_comment_nonce", token(f"ak{i}", 10))])
        out.append(benign(req("POST", "/wp-comments-post.php", _nav_post(
            "blog.example.org", f"/2024/11/{i + 3:02d}/spring-update/"), body, URLENCODED), KIND,
            desc + " (form post)", "placement:form"))
        body = js({"data": {"title": desc, "slug": f"post-{i}", "body": html, "locale": "en",
                            "publishedAt": None, "author": {"connect": [10 + i]}}})
        out.append(benign(req("POST", "/api/articles", xhr_headers(
            "cms.example.com", Authorization="Bearer " + token(f"cms{i}", 64)), body,
            "application/json"), KIND, desc + " (headless CMS JSON)", "placement:json"))
    return out


def bracket_form_apis() -> list[dict[str, Any]]:
    out = []
    pi = form([("amount", "2599"), ("currency", "eur"),
               ("automatic_payment_methods[enabled]", "true"),
               ("description", "Order #10482 – Rock & Roll Tee (M)"),
               ("metadata[order_id]", "10482"), ("metadata[note]", "gift; don't bill shipping"),
               ("receipt_email", "siobhan.obrien@example.ie"),
               ("shipping[name]", "Siobhán O'Brien"),
               ("shipping[address][line1]", "14 St. Stephen's Green"),
               ("shipping[address][city]", "Dublin"), ("shipping[address][country]", "IE")])
    out.append(("payments API, Stripe-style bracketed form fields", req(
        "POST", "/v1/payment_intents", api_headers("api.payments.example.com",
                                                   ua="Stripe/v1 PythonBindings/11.2.0",
                                                   token="sk_test_" + token("st", 24),
                                                   Stripe_Version="2024-10-28.acacia",
                                                   Idempotency_Key="8b1c9d0e-idem-10482"),
        pi, URLENCODED)))
    sess = form([("mode", "payment"),
                 ("success_url", "https://shop.example.com/thanks?session_id="
                                 "{CHECKOUT_SESSION_ID}"),
                 ("cancel_url", "https://shop.example.com/cart?canceled=1"),
                 ("line_items[0][price_data][currency]", "usd"),
                 ("line_items[0][price_data][product_data][name]", "Union Jack Flag 3'x5'"),
                 ("line_items[0][price_data][unit_amount]", "1850"),
                 ("line_items[0][quantity]", "1"), ("customer_email", "dwayne.dangelo@example.com"),
                 ("allow_promotion_codes", "true"), ("locale", "auto")])
    out.append(("checkout session with a {CHECKOUT_SESSION_ID} placeholder URL", req(
        "POST", "/v1/checkout/sessions", api_headers("api.payments.example.com",
                                                     ua="Stripe/v1 NodeBindings/17.3.0",
                                                     token="sk_test_" + token("st2", 24)),
        sess, URLENCODED)))
    sms = form([("To", "+15558675310"), ("From", "+15017122661"),
                ("Body", "Your code is 482910. Don't share it with anyone -- we'll never ask "
                         "for it. Reply STOP to opt out."),
                ("StatusCallback", "https://app.example.io/twilio/status?msg=otp&id=77")])
    out.append(("SMS API: send a message (form fields)", req(
        "POST", "/2010-04-01/Accounts/AC" + token("tw", 32) + "/Messages.json", api_headers(
            "api.sms.example.com", ua="twilio-python/9.3.7 (Linux x86_64) Python/3.12.7",
            Authorization=basic("AC" + token("tw", 32), token("twp", 32))), sms, URLENCODED)))
    mail = form([("from", "Excited User <mailgun@mg.example.com>"),
                 ("to", "Zoë Ångström <zoe@angstrom.example.se>"),
                 ("subject", "Hello, Zoë! Your invoice (#INV-2024-113) is ready"),
                 ("text", "Hi Zoë,\n\nYour invoice is attached.\n\n-- \nExample AB"),
                 ("html", "<p>Hi Zoë,</p><p>Your invoice is <a href=\"https://billing.example"
                          ".com/i/113\">here</a>.</p>"), ("o:tag", "invoice"),
                 ("h:Reply-To", "billing@example.com"), ("v:invoice-id", "113")])
    out.append(("email API: send with display names and HTML (form fields)", req(
        "POST", "/v3/mg.example.com/messages", api_headers(
            "api.mail.example.com", ua="mailgun.js/10.2.3",
            Authorization=basic("api", "key-" + token("mg", 32))), mail, URLENCODED)))
    cust = form([("email", "keiko.tanaka@example.jp"), ("name", "田中 恵子 (Keiko Tanaka)"),
                 ("address[line1]", "千代田区丸の内1-9-1"), ("address[postal_code]", "100-0005"),
                 ("address[country]", "JP"), ("preferred_locales[]", "ja-JP"),
                 ("preferred_locales[]", "en"), ("metadata[crm_id]", "0034x00002XyZab")])
    out.append(("customers API with UTF-8 address and array fields", req(
        "POST", "/v1/customers", api_headers("api.payments.example.com",
                                             ua="Stripe/v1 RubyBindings/13.1.0",
                                             token="sk_test_" + token("st3", 24)),
        cust, URLENCODED)))
    return [benign(inp, KIND, desc, "placement:form") for desc, inp in out]


def everyday_forms() -> list[dict[str, Any]]:
    out: list[tuple[str, dict[str, Any]]] = []
    out.append(("newsletter sign-up", req("POST", "/newsletter/subscribe", _nav_post(
        "www.example.com", "/blog/"), form([("EMAIL", "jane.o'neil+news@example.com"),
                                            ("FNAME", "Jane"), ("b_3f2a_7c1e", ""),
                                            ("subscribe", "Subscribe")]), URLENCODED)))
    out.append(("event RSVP with dietary notes", req("POST", "/events/holiday-party-2024/rsvp",
        _nav_post("events.example.com", "/events/holiday-party-2024"), form([
            ("attending", "yes"), ("guests", "2"), ("name", "Tomasz Wiśniewski"),
            ("dietary", "no nuts; gluten-free (coeliac) -- my +1 is vegan"),
            ("song_request", "Don't Stop Me Now (Queen)"), ("arrival", "19:30")]), URLENCODED)))
    out.append(("job application: cover letter text", req("POST", "/careers/apply/4471",
        _nav_post("jobs.example.com", "/careers/4471-senior-backend-engineer"), form([
            ("first_name", "Priya"), ("last_name", "Raghavan"), ("email", "priya_r@example.in"),
            ("linkedin", "https://www.linkedin.com/in/priya-raghavan-42/"),
            ("cover_letter", "Dear Hiring Manager,\n\nI'm excited to apply for the Senior "
                             "Backend Engineer role. Over 8+ years I've built APIs (Python/Go), "
                             "scaled Postgres to ~2 TB & led a team of 5. I'd love to bring "
                             "that to Example's \"payments\" squad.\n\nBest,\nPriya"),
            ("salary_expectation", "€85,000–95,000"), ("notice_period", "1 month"),
            ("source", "Referral (Zoë Ångström)")]), URLENCODED)))
    out.append(("donation with a dedication", req("POST", "/donate", _nav_post(
        "give.example.org", "/donate?campaign=winter-2024", SAFARI_UA), form([
            ("amount", "25.00"), ("frequency", "monthly"), ("currency", "USD"),
            ("dedication", "In memory of Ma & Pa O'Leary -- they'd have loved this."),
            ("anonymous", "0"), ("cover_fees", "1")]), URLENCODED)))
    out.append(("B2B quote request", req("POST", "/quote", _nav_post(
        "www.example-supplies.com", "/quote"), form([
            ("company", "Smith, Jones & D'Angelo, LLP"), ("qty", "500"),
            ("product", "Gel Shoe Inserts – Men's 8-13"),
            ("details", "Need 500 pairs by 01/15; custom packaging w/ our logo (vector file: "
                        ".ai/.eps). Budget ~$4.50/unit incl. shipping to 94043."),
            ("budget", "$2,000-$2,500")]), URLENCODED)))
    out.append(("appointment booking", req("POST", "/booking/confirm", _nav_post(
        "salon.example.com", "/booking?service=cut-colour", IPHONE_UA), form([
            ("service", "Cut & colour (long hair)"), ("date", "2024-12-07"), ("time", "14:30"),
            ("stylist", "Ana-María"), ("notes", "Allergic to PPD (hair dye) -- patch test "
                                               "needed? Running 5' late maybe."),
            ("phone", "+34 612 345 678")]), URLENCODED)))
    out.append(("survey with repeated checkbox fields", req("POST", "/survey/2024/submit",
        _nav_post("survey.example.com", "/survey/2024"), form([
            ("q1", "4"), ("q2[]", "Price"), ("q2[]", "Quality"), ("q2[]", "Delivery speed"),
            ("q3", "Other: \"the packaging is beautiful!\""), ("q4", "Yes, definitely"),
            ("q5", "Keep the free returns :) and maybe add Apple Pay?")]), URLENCODED)))
    out.append(("filter form submitted with GET", req(
        "GET", "/collections/tables?filter.p.product_type=Dining+Tables&filter.v.price.gte=100"
               "&filter.v.price.lte=500&filter.v.option.wood=Oak&filter.v.option.wood=Walnut"
               "&sort_by=price-ascending", site_headers(
                   "shop.example.com", Referer="https://shop.example.com/collections/tables",
                   Sec_Fetch_Site="same-origin", Sec_Fetch_Mode="navigate",
                   Sec_Fetch_Dest="document", Sec_Fetch_User="?1"))))
    out.append(("address autocomplete lookup (XHR GET)", req(
        "GET", "/api/address/autocomplete?q=22+O%27Connell+St%2C+Lim&country=IE&limit=5",
        xhr_headers("shop.example.com"))))
    out.append(("comment reply form on a news site", req("POST", "/comments/reply", _nav_post(
        "news.example.co.uk", "/2024/11/05/council-votes-on-parking/", FIREFOX_UA), form([
            ("parent_id", "88231"), ("article_id", "5512"),
            ("body", "\"Free parking\" my foot -- it's £2.50/hr after 6pm now. Anyone else "
                     "notice the new signs on Union St.? #parking"),
            ("display_name", "Grumpy_Commuter_77")]), URLENCODED)))
    out.append(("feedback widget: thumbs + free text (JSON)", req(
        "POST", "/api/feedback", xhr_headers("docs.example.com"), js({
            "page": "/docs/getting-started#install", "helpful": False,
            "comment": "Step 3 fails on Windows: 'npm' is not recognized as an internal or "
                       "external command... need to mention Node install first?",
            "selection": "npm install --save @example/sdk"}), "application/json")))
    out.append(("gift card form with a message", req("POST", "/gift-cards/purchase", _nav_post(
        "shop.example.com", "/gift-cards"), form([
            ("amount", "50"), ("recipient_name", "Zoë"), ("recipient_email",
                                                            "zoe@angstrom.example.se"),
            ("message", "Happy 30th!! 🎉 Go treat yourself -- no socks allowed ;)"),
            ("send_on", "2024-12-24")]), URLENCODED)))
    tags = {"GET": "placement:query", "POST": "placement:form"}
    return [benign(inp, KIND, desc, "placement:json" if "JSON" in desc
                   else tags[inp["method"]]) for desc, inp in out]


def main() -> None:
    tests = (contact_messages() + checkout_forms() + account_forms() + rich_text_forms()
             + bracket_form_apis() + everyday_forms())
    write("benign/0002-forms.yaml", 2, "Benign: forms with prose, punctuation and emoji "
          "(contact, checkout, log-in, rich text, bracketed form APIs)", tests)


if __name__ == "__main__":
    main()
