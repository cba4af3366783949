'''Benign traffic: developer forum posts that quote code in markdown blocks.

Writes ``benign/0004-code-snippets.yaml`` (kind ``code-snippets``). Each post is
prose around a fenced code block (Python, JavaScript, HTML, SQL, shell,
PowerShell, PHP, Java, C, Go, Rust, YAML, config files), as people post on
Q&A sites, forums and issue trackers. Each is sent three ways: a Q&A site's
"ask a question" form, a Discourse-style forum's XHR form post and an issue
tracker API's JSON comment.
'''

from __future__ import annotations

from textwrap import dedent
from typing import Any

from benign_lib import (
    CHROME_UA,
    FIREFOX_UA,
    PEOPLE,
    SAFARI_UA,
    api_headers,
    benign,
    form,
    js,
    req,
    site_headers,
    token,
    xhr_headers,
)
from common import write

KIND = "code-snippets"

# (title, tags, markdown body)
POSTS: list[tuple[str, str, str]] = [
    ("How do I merge two dictionaries in a single expression?", "python dictionary", dedent("""\
        I have two dicts and want a new one with both, without modifying either:

        ```python
        x = {'a': 1, 'b': 2}
        y = {'b': 3, 'c': 4}
        z = x | y   # Python 3.9+
        print(z)    # {'a': 1, 'b': 3, 'c': 4}
        ```

        Is there a way that works on 3.8 too? `{**x, **y}` maybe?""")),
    ("subprocess.run with shell=True hangs when output is large", "python subprocess linux",
     dedent("""\
        This works for small dirs but hangs forever on /var/log:

        ```python
        import subprocess
        result = subprocess.run("ls -la /var/log | grep nginx", shell=True,
                                capture_output=True, text=True, timeout=30)
        print(result.returncode, result.stdout)
        ```

        Running Ubuntu 22.04, Python 3.10. What am I missing?""")),
    ("pandas read_sql with a date parameter returns an empty DataFrame", "python pandas sql",
     dedent("""\
        ```python
        import pandas as pd
        df = pd.read_sql(
            "SELECT id, email, created_at FROM users WHERE created_at > %(since)s",
            conn, params={"since": "2024-01-01"})
        print(len(df))  # 0 ?!
        ```

        The same query in psql returns 1,204 rows. Timezone issue?""")),
    ("Why is using eval() on user input a bad idea?", "python security eval", dedent("""\
        My teacher says never do this, but it's just a calculator:

        ```python
        expr = input("Enter a math expression: ")
        print(eval(expr))
        ```

        What's the worst that could happen? And what should I use instead -- `ast.literal_eval`?
        """)),
    ("Is this query vulnerable to SQL injection? (f-string vs parameters)",
     "python sql security psycopg2", dedent("""\
        Code review comment says the first one is unsafe. Why, if `name` comes from our own form?

        ```python
        # current code
        cur.execute(f"SELECT * FROM users WHERE name = '{name}'")

        # suggested
        cur.execute("SELECT * FROM users WHERE name = %s", (name,))
        ```""")),
    ("Flask: variable not showing in Jinja template", "python flask jinja2", dedent("""\
        ```python
        @app.route("/hello/<name>")
        def hello(name):
            return render_template("hello.html", name=name, messages=get_messages())
        ```

        ```html
        <h1>Hello, {{ name }}!</h1>
        {% if messages %}
          <ul>{% for m in messages %}<li>{{ m.text|e }}</li>{% endfor %}</ul>
        {% endif %}
        ```

        The heading renders but the list is always empty.""")),
    ("fetch() inside useEffect runs twice in React 18", "javascript reactjs fetch", dedent("""\
        ```jsx
        useEffect(() => {
          const controller = new AbortController();
          fetch(`/api/items?page=${page}&sort=-created_at`, { signal: controller.signal })
            .then((r) => r.json())
            .then((data) => setItems(data.items))
            .catch((err) => { if (err.name !== 'AbortError') console.error(err); });
          return () => controller.abort();
        }, [page]);
        ```

        I see two requests in the Network tab. Is that StrictMode?""")),
    ("innerHTML vs textContent: is this safe?", "javascript dom xss", dedent("""\
        ```js
        const el = document.getElementById('greeting');
        el.innerHTML = '<b>Welcome back, ' + user.name + '</b>';
        // vs
        el.textContent = `Welcome back, ${user.name}`;
        ```

        Our linter flags the first line. `user.name` comes from our API, so... is it really a
        problem?""")),
    ("Where should I put <script> tags: <head> or end of <body>?", "html javascript performance",
     dedent("""\
        ```html
        <!DOCTYPE html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <script src="/js/app.js" defer></script>
        </head>
        <body onload="init()">
          <button type="button" onclick="alert('Saved!')">Save</button>
          <img src="logo.png" alt="Logo" onerror="this.style.display='none'">
        </body>
        </html>
        ```

        Does `defer` make the position irrelevant?""")),
    ("React: rendering HTML from the CMS", "reactjs html sanitize", dedent("""\
        Our CMS returns HTML (`<p>Hello <em>world</em></p>`) and I render it like this:

        ```jsx
        export default function Article({ html }) {
          return (
            <div className="prose"
                 dangerouslySetInnerHTML={{ __html: DOMPurify.sanitize(html) }} />
          );
        }
        ```

        Is DOMPurify enough here?""")),
    ("jQuery $.ajax POST sends empty body to PHP", "jquery ajax php", dedent("""\
        ```javascript
        $.ajax({
          url: '/api/save.php',
          type: 'POST',
          contentType: 'application/json',
          data: JSON.stringify({ id: 42, note: "It's done & dusted" }),
          success: function (res) { $('#status').html('<span class="ok">Saved</span>'); }
        });
        ```

        And on the PHP side `$_POST` is empty. Why?""")),
    ("LEFT JOIN with WHERE on the right table drops rows", "sql postgresql join", dedent("""\
        I want every customer, with their order count for 2024 (0 if none):

        ```sql
        SELECT c.id, c.name, COUNT(o.id) AS orders
        FROM customers c
        LEFT JOIN orders o ON o.customer_id = c.id
        WHERE o.created_at >= '2024-01-01' OR o.id IS NULL
        GROUP BY c.id, c.name
        HAVING COUNT(o.id) > 2
        ORDER BY orders DESC;
        ```

        Customers whose only orders are from 2023 disappear. Should the date go in the ON clause?
        """)),
    ("UNION vs UNION ALL: which is faster?", "sql mysql", dedent("""\
        ```sql
        SELECT email FROM customers
        UNION
        SELECT email FROM newsletter_subscribers;
        ```

        Takes 4 s on 2M rows; `UNION ALL` takes 0.3 s but gives duplicates. Any middle ground?
        """)),
    ("Migration fails: relation already exists", "postgresql migration", dedent("""\
        ```sql
        DROP TABLE IF EXISTS order_items;
        CREATE TABLE order_items (
            id         bigserial PRIMARY KEY,
            order_id   bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            sku        text   NOT NULL,
            qty        int    NOT NULL CHECK (qty > 0)
        );
        INSERT INTO order_items (order_id, sku, qty) VALUES (1, 'TSH-ROCK-BLK-M', 2)
        ON CONFLICT DO NOTHING;
        ```

        Error: `relation "order_items_pkey" already exists`. Any ideas?""")),
    ("Latest order per customer with ROW_NUMBER()", "sql window-functions", dedent("""\
        ```sql
        SELECT *
        FROM (
          SELECT o.*, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn
          FROM orders o
        ) t
        WHERE rn = 1;
        ```

        Is there a faster way in Postgres (DISTINCT ON?)""")),
    ("Dynamic SQL in a stored procedure (T-SQL)", "sql-server tsql", dedent("""\
        ```sql
        CREATE PROCEDURE dbo.SearchProducts @term NVARCHAR(100)
        AS
        BEGIN
            DECLARE @sql NVARCHAR(MAX) = N'SELECT TOP 50 * FROM dbo.Products WHERE Name LIKE @p';
            EXEC sp_executesql @sql, N'@p NVARCHAR(102)', @p = N'%' + @term + N'%';
        END
        GO
        ```

        Does using sp_executesql with a parameter keep the plan cached?""")),
    ("Bash: rename all .JPG files to lowercase extension", "bash shell", dedent("""\
        ```bash
        for f in *.JPG; do
          mv -- "$f" "${f%.JPG}.jpg"
        done
        ```

        Works, but fails on names with spaces in subfolders. How do I recurse?""")),
    ("find -exec vs xargs for recently changed PHP files", "linux find bash", dedent("""\
        ```bash
        find /var/www -type f -name "*.php" -mtime -1 -exec ls -l {} \\;
        # or
        find /var/www -type f -name '*.php' -mtime -1 -print0 | xargs -0 ls -l
        ```

        Which one is better for ~50k files?""")),
    ("curl + jq: list my repo names", "bash curl jq", dedent("""\
        ```sh
        curl -s -H "Authorization: Bearer $GITHUB_TOKEN" \\
             "https://api.github.com/user/repos?per_page=100&page=1" | jq -r '.[].full_name'
        ```

        Only returns 30 repos even with per_page=100?""")),
    ("What do the fields in /etc/passwd mean?", "linux users", dedent("""\
        ```console
        $ cat /etc/passwd | cut -d: -f1,6,7 | head -3
        root:/root:/bin/bash
        daemon:/usr/sbin:/usr/sbin/nologin
        bin:/bin:/usr/sbin/nologin
        ```

        Why is the password field just `x`? Where are the real hashes?""")),
    ("Laravel scheduler cron entry not running", "laravel cron", dedent("""\
        My crontab (`crontab -e` as www-data):

        ```
        */5 * * * * cd /var/www/app && /usr/bin/php artisan schedule:run >> /dev/null 2>&1
        ```

        `grep CRON /var/log/syslog` shows it firing but nothing happens. Permissions?""")),
    ("Docker image too big (1.2 GB) for a small Flask app", "docker python", dedent("""\
        ```dockerfile
        FROM python:3.12-slim
        WORKDIR /app
        COPY requirements.txt .
        RUN pip install --no-cache-dir -r requirements.txt && rm -rf /root/.cache
        COPY . .
        EXPOSE 8000
        CMD ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]
        ```

        Multi-stage build worth it?""")),
    ("nginx: PHP files download instead of executing", "nginx php-fpm", dedent("""\
        ```nginx
        server {
            listen 80;
            root /var/www/html;
            index index.php index.html;
            location / { try_files $uri $uri/ /index.php?$query_string; }
            location ~ \\.php$ {
                include snippets/fastcgi-php.conf;
                fastcgi_pass unix:/run/php/php8.2-fpm.sock;
            }
        }
        ```""")),
    (".htaccess rewrite for a front controller", "apache mod-rewrite", dedent("""\
        ```apache
        RewriteEngine On
        RewriteCond %{REQUEST_FILENAME} !-f
        RewriteCond %{REQUEST_FILENAME} !-d
        RewriteRule ^(.*)$ index.php?/$1 [L,QSA]
        ```

        Query strings get lost on /search?q=test. I thought QSA fixes that?""")),
    ("PDO prepared statement returns false", "php pdo mysql", dedent("""\
        ```php
        <?php
        $pdo = new PDO('mysql:host=localhost;dbname=shop;charset=utf8mb4', $user, $pass, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        ]);
        $stmt = $pdo->prepare('SELECT * FROM users WHERE email = :email LIMIT 1');
        $stmt->execute(['email' => $_POST['email'] ?? '']);
        $user = $stmt->fetch(PDO::FETCH_ASSOC);
        var_dump($user);
        ```

        `bool(false)` even though the row exists.""")),
    ("echo $_GET['name'] prints nothing", "php", dedent("""\
        ```php
        <?php
        $name = htmlspecialchars($_GET['name'] ?? 'stranger', ENT_QUOTES, 'UTF-8');
        echo "<p>Hello, {$name}!</p>";
        ```

        URL is `hello.php?name=Zo%C3%AB`. Page shows "Hello, stranger!".""")),
    ("Spring Boot can't connect to MySQL in Docker", "java spring-boot mysql", dedent("""\
        ```java
        @RestController
        @RequestMapping("/api/users")
        public class UserController {
            @GetMapping("/{id}")
            public ResponseEntity<User> get(@PathVariable Long id) {
                return repo.findById(id).map(ResponseEntity::ok)
                           .orElse(ResponseEntity.notFound().build());
            }
        }
        ```

        ```properties
        spring.datasource.url=jdbc:mysql://localhost:3306/shop?useSSL=false&serverTimezone=UTC
        spring.datasource.username=${DB_USER}
        ```

        Works on my machine, `Communications link failure` in the container.""")),
    ("log4j2.xml: how to add the thread name to the pattern?", "java log4j2", dedent("""\
        ```xml
        <Configuration status="WARN">
          <Appenders>
            <Console name="Console" target="SYSTEM_OUT">
              <PatternLayout
                  pattern="%d{yyyy-MM-dd HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg%n"/>
            </Console>
          </Appenders>
          <Loggers><Root level="info"><AppenderRef ref="Console"/></Root></Loggers>
        </Configuration>
        ```

        We're on 2.24.1, so the old lookup issues shouldn't apply, right?""")),
    ("fgets leaves a newline at the end of the string", "c stdio", dedent("""\
        ```c
        #include <stdio.h>
        #include <string.h>

        int main(void) {
            char name[32];
            if (fgets(name, sizeof name, stdin)) {
                name[strcspn(name, "\\n")] = '\\0';
                printf("Hello, %s!\\n", name);
            }
            return 0;
        }
        ```

        Is `strcspn` the idiomatic fix?""")),
    ("Go: http.HandlerFunc returns 404 for /api/", "go net-http", dedent("""\
        ```go
        func main() {
            mux := http.NewServeMux()
            mux.HandleFunc("GET /api/items/{id}", func(w http.ResponseWriter, r *http.Request) {
                fmt.Fprintf(w, `{"id": %q}`, r.PathValue("id"))
            })
            log.Fatal(http.ListenAndServe(":8080", mux))
        }
        ```""")),
    ("Rust: how do I print literal braces with format!?", "rust string-formatting", dedent("""\
        ```rust
        let name = "world";
        println!("{{literal}} hello, {}!", name);   // prints {literal} hello, world!
        let json = format!(r#"{{"name": "{name}"}}"#);
        ```

        Is there a nicer way for JSON than doubling every brace?""")),
    ("PowerShell: find files > 100 MB in all users' Downloads", "powershell windows", dedent("""\
        ```powershell
        Get-ChildItem -Path 'C:\\Users\\*\\Downloads' -Recurse -File -ErrorAction SilentlyContinue |
            Where-Object { $_.Length -gt 100MB } |
            Sort-Object Length -Descending |
            Select-Object FullName, @{n='MB';e={[math]::Round($_.Length / 1MB, 1)}}
        ```""")),
    ("Windows: hosts file changes ignored", "windows networking dns", dedent("""\
        I edited the hosts file as admin:

        ```bat
        notepad C:\\Windows\\System32\\drivers\\etc\\hosts
        ipconfig /flushdns
        ping dev.example.local
        ```

        Still resolves to the old IP. Is the browser caching DNS?""")),
    ("GitHub Actions: secret is empty in a pull request workflow", "github-actions ci",
     dedent("""\
        ```yaml
        on: [pull_request]
        jobs:
          publish:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - run: npm ci && npm test
              - run: npm publish --dry-run
                env:
                  NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}
                  BRANCH: ${{ github.head_ref }}
        ```

        NODE_AUTH_TOKEN is empty for PRs from forks.""")),
    ("Kubernetes: pod stuck in CrashLoopBackOff", "kubernetes", dedent("""\
        ```yaml
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 2
          template:
            spec:
              containers:
                - name: web
                  image: registry.example.com/web:2.14.3
                  command: ["/bin/sh", "-c", "python manage.py migrate && gunicorn app.wsgi"]
                  env:
                    - name: DATABASE_URL
                      valueFrom: {secretKeyRef: {name: db, key: url}}
        ```""")),
    ("Password regex: at least one uppercase and one digit", "regex validation", dedent("""\
        ```js
        const re = /^(?=.*[A-Z])(?=.*\\d)[A-Za-z\\d@$!%*?&]{8,}$/;
        console.log(re.test("Passw0rd!"));   // true
        console.log(re.test("password"));    // false
        ```

        Why does `"Pässw0rd"` fail?""")),
    ("Vue 3: v-for list doesn't update after push", "vue.js", dedent("""\
        ```html
        <template>
          <ul>
            <li v-for="item in items" :key="item.id" @click="select(item)">{{ item.name }}</li>
          </ul>
          <p v-if="!items.length">Nothing here yet &mdash; add one!</p>
        </template>
        ```""")),
    ("Rails: where with a LIKE and user input", "ruby-on-rails activerecord", dedent("""\
        ```ruby
        # is this safe?
        User.where("name LIKE ?", "%#{User.sanitize_sql_like(params[:q])}%").limit(20)
        ```

        Or should I use Arel?""")),
    ("MongoDB: find orders over $100 that are paid or shipped", "mongodb node.js", dedent("""\
        ```js
        const orders = await db.collection('orders').find({
          total: { $gt: 100 },
          status: { $in: ['paid', 'shipped'] },
          'customer.email': { $regex: /@example\\.com$/i }
        }).sort({ createdAt: -1 }).limit(50).toArray();
        ```

        Do I need an index on `status` and `total` both?""")),
    ("ldapsearch filter for a user in a group", "ldap active-directory", dedent("""\
        ```sh
        GROUP="CN=VPN Users,OU=Groups,DC=corp,DC=example,DC=com"
        ldapsearch -H ldaps://dc1.corp.example.com -W \\
          -D "CN=svc-ldap,OU=Service,DC=corp,DC=example,DC=com" \\
          -b "DC=corp,DC=example,DC=com" \\
          "(&(objectClass=user)(sAMAccountName=jdoe)(memberOf=$GROUP))" cn mail
        ```

        Returns nothing, but the user is definitely in the group (nested?).""")),
]


def _so_form(i: int, title: str, tags: str, body: str) -> dict[str, Any]:
    host = "qa.example.dev"
    data = form([("fkey", token(f"fkey{i}", 64)), ("author", ""), ("i1l", token(f"i1l{i}", 20)),
                 ("title", title), ("post-text", body), ("tagnames", tags),
                 ("post-visibility", "public"), ("is-ask-wizard", "false")])
    headers = site_headers(host, ua=[CHROME_UA, FIREFOX_UA, SAFARI_UA][i % 3],
                           Origin=f"https://{host}", Referer=f"https://{host}/questions/ask",
                           Sec_Fetch_Site="same-origin", Sec_Fetch_Mode="navigate",
                           Sec_Fetch_Dest="document", Sec_Fetch_User="?1",
                           Cookie=f"prov={token(f'prov{i}', 36)}; acct=t={token(f'acct{i}', 32)}"
                                  f"&s={token(f's{i}', 32)}")
    return req("POST", "/questions/ask/submit", headers, data,
               "application/x-www-form-urlencoded")


def _discourse(i: int, title: str, tags: str, body: str) -> dict[str, Any]:
    host = "forum.example.org"
    data = form([("raw", body), ("title", title), ("unlist_topic", "false"), ("category", "7"),
                 ("is_warning", "false"), ("archetype", "regular"),
                 ("typing_duration_msecs", str(41000 + i * 137)),
                 ("composer_open_duration_msecs", str(98000 + i * 311)),
                 ("tags[]", tags.split()[0]), ("nested_post", "true")])
    headers = xhr_headers(host, ua=[FIREFOX_UA, CHROME_UA][i % 2],
                          X_CSRF_Token=token(f"dcsrf{i}", 86), X_Requested_With="XMLHttpRequest",
                          Discourse_Present="true", Discourse_Logged_In="true",
                          Cookie=f"_t={token(f'dt{i}', 200)}; _forum_session="
                                 f"{token(f'dfs{i}', 300)}")
    return req("POST", "/posts.json", headers, data,
               "application/x-www-form-urlencoded; charset=UTF-8")


def _issue_comment(i: int, title: str, tags: str, body: str) -> dict[str, Any]:
    p = PEOPLE[i % len(PEOPLE)]
    text = f"@{p['first'].lower()} I hit the same thing. From the thread \"{title}\":\n\n{body}"
    headers = api_headers("api.code.example.com", ua="octokit-rest.js/21.0.2",
                          token="ghp_" + token(f"ghp{i}", 36),
                          Accept="application/vnd.github+json",
                          X_GitHub_Api_Version="2022-11-28")
    return req("POST", f"/repos/example/shop/issues/{4400 + i}/comments", headers,
               js({"body": text}), "application/json")


def main() -> None:
    tests = []
    for i, (title, tags, body) in enumerate(POSTS):
        lang = body.split("```", 2)[1].split("\n", 1)[0] or "plain"
        tests.append(benign(_so_form(i, title, tags, body), KIND,
                            f"Q&A site question ({lang}): {title}", "placement:form"))
        tests.append(benign(_discourse(i, title, tags, body), KIND,
                            f"forum post ({lang}): {title}", "placement:form"))
        tests.append(benign(_issue_comment(i, title, tags, body), KIND,
                            f"issue comment quoting a snippet ({lang}): {title}",
                            "placement:json"))
    write("benign/0004-code-snippets.yaml", 4, "Benign: developer posts quoting code in "
          "markdown blocks (Q&A form, forum XHR, issue tracker JSON)", tests)


if __name__ == "__main__":
    main()
