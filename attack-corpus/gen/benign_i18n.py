"""Benign traffic: non-English text in every place a shop receives it.

Writes ``benign/0005-i18n.yaml`` (kind ``i18n``): for each of 18 languages
(German, French, Spanish, Polish, Russian, Greek, Arabic, Hebrew, Chinese,
Japanese, Korean, Hindi, Turkish, Vietnamese, Portuguese, Italian, Ukrainian,
Thai) two searches (UTF-8 percent-encoded in the query), a review (form), an
address (JSON), a page whose path has UTF-8 segments, a cookie holding recent
searches (``encodeURIComponent`` of JSON) and a chat message (JSON).
"""

# Text in other scripts is the point of this module.
# ruff: noqa: RUF001

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from benign_lib import (
    CHROME_UA,
    FIREFOX_UA,
    IPHONE_UA,
    SAFARI_UA,
    benign,
    form,
    js,
    query,
    req,
    site_headers,
    token,
    uid,
    uri_component,
    xhr_headers,
)
from common import write

KIND = "i18n"

# code, Accept-Language, (search 1, search 2), review, (name, street, city, postcode, country),
# path slug, chat message
LANGS: list[dict[str, Any]] = [
    {"code": "de", "lang": "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("Größe wählen", "Gartenmöbel aus Holz"),
     "review": "Sehr gute Qualität! Die Lieferung hat allerdings 5 Tage gedauert – trotzdem "
               "5 Sterne. Würde ich jederzeit wieder kaufen.",
     "addr": ("Jürgen Weiß", "Königstraße 12, 3. OG", "Stuttgart", "70173", "DE"),
     "slug": "herren/t-shirts/größe-m", "chat": "Hallo! Können Sie mir sagen, wann meine "
                                               "Bestellung ankommt? Danke schön."},
    {"code": "fr", "lang": "fr-FR,fr;q=0.9,en;q=0.8",
     "q": ("robe d'été à fleurs", "chaussures enfant pointure 28"),
     "review": "Très bon produit, conforme à la description. Seul bémol : l'emballage était "
               "abîmé… mais le service client a été réactif !",
     "addr": ("Hélène Dupré", "8, rue de l'Hôtel-de-Ville", "Paris", "75004", "FR"),
     "slug": "vêtements/robe-d-été", "chat": "Bonjour, est-il possible de modifier l'adresse "
                                             "de livraison ? Merci d'avance."},
    {"code": "es", "lang": "es-ES,es;q=0.9",
     "q": ("zapatillas de niño", "¿cuánto tarda el envío?"),
     "review": "¡Me encantó! Llegó en 48 h y la talla es perfecta. El único «pero»: las "
               "instrucciones sólo vienen en inglés.",
     "addr": ("José Ramón Peña", "Calle del Niño Jesús, 3, 2º B", "Madrid", "28009", "ES"),
     "slug": "niños/camisetas-de-algodón", "chat": "Hola, ¿pueden enviar a Canarias? ¡Gracias!"},
    {"code": "pl", "lang": "pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("buty zimowe męskie", "żółta sukienka"),
     "review": "Świetna jakość, szybka wysyłka. Polecam każdemu! Jedyny minus – brak polskiej "
               "instrukcji.",
     "addr": ("Małgorzata Żółkiewska", "ul. Świętokrzyska 14/3", "Warszawa", "00-050", "PL"),
     "slug": "obuwie/buty-zimowe-męskie", "chat": "Dzień dobry, czy mogę zwrócić towar po 14 "
                                                  "dniach? Pozdrawiam."},
    {"code": "ru", "lang": "ru-RU,ru;q=0.9,en;q=0.8",
     "q": ("зимняя куртка мужская", "чехол для телефона"),
     "review": "Отличный товар! Доставка быстрая, упаковка целая. Рекомендую всем — 5 из 5.",
     "addr": ("Анна Сергеевна Иванова", "ул. Тверская, д. 7, кв. 15", "Москва", "125009",
              "RU"),
     "slug": "одежда/куртки", "chat": "Здравствуйте! Подскажите, когда будет в наличии "
                                      "размер M? Спасибо."},
    {"code": "el", "lang": "el-GR,el;q=0.9,en;q=0.8",
     "q": ("παπούτσια για τρέξιμο", "ελαιόλαδο Κρήτης"),
     "review": "Πολύ καλή ποιότητα και γρήγορη αποστολή. Το συνιστώ ανεπιφύλακτα!",
     "addr": ("Γιώργος Παπαδόπουλος", "Οδός Ερμού 25", "Αθήνα", "105 63", "GR"),
     "slug": "προϊόντα/ελαιόλαδο", "chat": "Γεια σας! Πότε θα παραδοθεί η παραγγελία μου; "
                                           "Ευχαριστώ."},
    {"code": "ar", "lang": "ar-SA,ar;q=0.9,en;q=0.8",
     "q": ("هاتف ذكي سامسونج", "عطر رجالي"),
     "review": "منتج رائع وجودة ممتازة، وصل الطلب في الوقت المحدد. أنصح به بشدة!",
     "addr": ("محمد عبد الله", "شارع الملك فهد، حي العليا", "الرياض", "12211", "SA"),
     "slug": "منتجات/عطور", "chat": "مرحبا، هل يمكنني تغيير عنوان التوصيل؟ شكرا لكم."},
    {"code": "he", "lang": "he-IL,he;q=0.9,en;q=0.8",
     "q": ("נעלי ספורט לנשים", "מתנה ליום הולדת"),
     "review": "מוצר מעולה! הגיע מהר והאיכות גבוהה. ממליצה בחום.",
     "addr": ("יעל כהן", "רחוב הרצל 12, דירה 4", "תל אביב-יפו", "6688312", "IL"),
     "slug": "מוצרים/נעליים", "chat": "שלום, האם אפשר להחזיר מוצר אחרי 30 יום? תודה רבה."},
    {"code": "zh", "lang": "zh-CN,zh;q=0.9,en;q=0.8",
     "q": ("无线蓝牙耳机", "儿童运动鞋 32码"),
     "review": "质量很好，物流也很快！包装完好，值得购买。五星好评👍",
     "addr": ("王小明", "朝阳区建国路88号 SOHO现代城A座1205室", "北京市", "100022", "CN"),
     "slug": "商品/蓝牙耳机", "chat": "你好，请问什么时候发货？谢谢！"},
    {"code": "ja", "lang": "ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("ワイヤレスイヤホン", "子供用 スニーカー 20cm"),
     "review": "とても良い商品でした。発送も早く、梱包も丁寧でした。また購入したいです！",
     "addr": ("佐藤 花子", "渋谷区神南1-2-3 ABCビル5F", "東京都", "150-0041", "JP"),
     "slug": "商品/イヤホン", "chat": "こんにちは。注文した商品はいつ届きますか？"
                                     "よろしくお願いします。"},
    {"code": "ko", "lang": "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("무선 이어폰", "여름 원피스"),
     "review": "배송도 빠르고 품질도 정말 좋아요! 사이즈도 딱 맞습니다. 재구매 의사 있어요 ^^",
     "addr": ("김민준", "강남구 테헤란로 123, 4층", "서울특별시", "06134", "KR"),
     "slug": "상품/이어폰", "chat": "안녕하세요, 주문 취소가 가능한가요? 감사합니다."},
    {"code": "hi", "lang": "hi-IN,hi;q=0.9,en-IN;q=0.8,en;q=0.7",
     "q": ("पुरुषों के जूते", "रेशमी साड़ी"),
     "review": "बहुत बढ़िया उत्पाद! डिलीवरी समय पर हुई और गुणवत्ता भी शानदार है। धन्यवाद!",
     "addr": ("राहुल शर्मा", "फ्लैट 12, शांति अपार्टमेंट, सेक्टर 15", "नई दिल्ली", "110075",
              "IN"),
     "slug": "उत्पाद/जूते", "chat": "नमस्ते, मेरा ऑर्डर कब तक पहुँचेगा? धन्यवाद।"},
    {"code": "tr", "lang": "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("kışlık mont erkek", "çocuk ayakkabısı"),
     "review": "Ürün çok güzel, kargo hızlıydı. Beden tablosu doğru; herkese tavsiye ederim!",
     "addr": ("Ayşe Yıldız", "Atatürk Cad. No:45 D:3, Çankaya", "Ankara", "06420", "TR"),
     "slug": "ürünler/kışlık-mont", "chat": "Merhaba, siparişimi iptal edebilir miyim? "
                                            "Teşekkürler."},
    {"code": "vi", "lang": "vi-VN,vi;q=0.9,en;q=0.8",
     "q": ("áo dài truyền thống", "giày thể thao nữ"),
     "review": "Sản phẩm rất tốt, giao hàng nhanh. Tôi sẽ ủng hộ shop lần sau!",
     "addr": ("Nguyễn Thị Hương", "123 Đường Lê Lợi, Phường Bến Thành, Quận 1",
              "TP. Hồ Chí Minh", "700000", "VN"),
     "slug": "sản-phẩm/áo-dài", "chat": "Chào shop, cho mình hỏi còn size M không ạ? Cảm ơn!"},
    {"code": "pt", "lang": "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7",
     "q": ("tênis de corrida", "promoção de verão"),
     "review": "Adorei! Chegou antes do prazo e a qualidade é ótima. Recomendo a todos.",
     "addr": ("João Conceição", "Rua Augusta, 1500, apto. 32", "São Paulo - SP", "01304-001",
              "BR"),
     "slug": "calçados/tênis-de-corrida", "chat": "Olá, vocês entregam em Florianópolis? "
                                                  "Obrigado!"},
    {"code": "it", "lang": "it-IT,it;q=0.9,en;q=0.8",
     "q": ("scarpe da ginnastica", "caffè macinato"),
     "review": "Ottimo prodotto, spedizione velocissima. L'unico difetto? Il colore è un po' "
               "più scuro.",
     "addr": ("Giuseppe D'Annunzio", "Via dell'Indipendenza 12", "Bologna", "40121", "IT"),
     "slug": "caffè/macinato", "chat": "Buongiorno, è possibile pagare alla consegna? "
                                       "Grazie mille."},
    {"code": "uk", "lang": "uk-UA,uk;q=0.9,en;q=0.8",
     "q": ("вишиванка жіноча", "зимові чоботи"),
     "review": "Чудова якість, швидка доставка. Дуже задоволена покупкою, дякую!",
     "addr": ("Олена Коваленко", "вул. Хрещатик, 22, кв. 5", "Київ", "01001", "UA"),
     "slug": "одяг/вишиванки", "chat": "Добрий день! Чи є доставка до Львова? Дякую."},
    {"code": "th", "lang": "th-TH,th;q=0.9,en;q=0.8",
     "q": ("รองเท้าผ้าใบ", "ครีมกันแดด"),
     "review": "สินค้าดีมาก ส่งไว แพ็คของมาอย่างดี แนะนำเลยค่ะ",
     "addr": ("สมชาย ใจดี", "99/1 ถนนสุขุมวิท แขวงคลองเตย เขตคลองเตย", "กรุงเทพฯ", "10110",
              "TH"),
     "slug": "สินค้า/รองเท้า", "chat": "สวัสดีครับ สินค้าจะมาถึงเมื่อไหร่ครับ ขอบคุณครับ"},
]


def _lang_tests(i: int, lg: dict[str, Any]) -> list[dict[str, Any]]:
    code, lang = lg["code"], lg["lang"]
    host = "shop.example.com"
    ua = [CHROME_UA, SAFARI_UA, IPHONE_UA, FIREFOX_UA][i % 4]
    out = []
    for q in lg["q"]:
        uri = f"/{code}/search?" + query([("q", q), ("type", "product")])
        out.append(benign(req("GET", uri, site_headers(
            host, ua=ua, lang=lang, Referer=f"https://{host}/{code}/")),
            KIND, f"[{code}] search: {q}", "placement:query", f"lang:{code}"))
    name, street, city, postcode, country = lg["addr"]
    body = form([("review[rating]", str(5 - i % 2)), ("review[author]", name),
                 ("review[body]", lg["review"]), ("review[locale]", code),
                 ("authenticity_token", token(f"i18n{i}", 86) + "==")])
    out.append(benign(req("POST", f"/{code}/products/{uid(code)[:8]}/reviews", site_headers(
        host, ua=ua, lang=lang, Origin=f"https://{host}",
        Referer=f"https://{host}/{code}/products/{uid(code)[:8]}"), body,
        "application/x-www-form-urlencoded"),
        KIND, f"[{code}] product review: {lg['review'][:60]}", "placement:form", f"lang:{code}"))
    body = js({"name": name, "address1": street, "city": city, "zip": postcode,
               "country_code": country, "default": True})
    out.append(benign(req("PUT", "/api/v1/account/addresses/default", xhr_headers(
        host, ua=ua, Accept_Language=lang), body, "application/json"),
        KIND, f"[{code}] saved address: {name}, {city}", "placement:json", f"lang:{code}"))
    out.append(benign(req("GET", f"/{code}/" + quote(lg["slug"], safe="/"), site_headers(
        host, ua=ua, lang=lang, Referer=f"https://{host}/{code}/")),
        KIND, f"[{code}] page with UTF-8 path segments: /{code}/{lg['slug']}", "placement:path",
        f"lang:{code}"))
    cookie = (f"locale={code}; currency=EUR; recent_searches="
              + uri_component(js(list(lg["q"]))) + "; cart_note=" + uri_component(lg["chat"][:40]))
    out.append(benign(req("GET", f"/{code}/cart", site_headers(host, ua=ua, lang=lang,
                                                               Cookie=cookie)),
                      KIND, f"[{code}] cookie with recent searches (encodeURIComponent JSON)",
                      "placement:cookie", f"lang:{code}"))
    body = js({"conversation_id": uid(f"conv-{code}"), "text": lg["chat"], "locale": code,
               "client_ts": 1733000000000 + i})
    out.append(benign(req("POST", "/api/v1/chat/messages", xhr_headers(
        "support.example.com", ua=ua, Accept_Language=lang), body,
        "application/json; charset=utf-8"), KIND, f"[{code}] support chat: {lg['chat'][:60]}",
        "placement:json", f"lang:{code}"))
    return out


def _mixed() -> list[dict[str, Any]]:
    """Mixed-script and bidirectional text as people write it."""
    out = []
    samples = [
        ("mixed RTL/LTR: Hebrew with an English brand and a number",
         "קניתי iPhone 15 Pro ב-4,500 ₪ – שווה כל שקל!"),
        ("Arabic with Latin digits and an e-mail address",
         "يرجى التواصل معي على ahmed.k@example.com أو 0551234567"),
        ("Japanese with full-width punctuation and ASCII product code",
         "型番：ABC-123（ブラック）を２個注文しました。"),
        ("Chinese/English code-switching in a review",
         "这个 USB-C 充电器很好用，charging speed 也很快！"),
        ("German compound words and a quoted title",
         "Donaudampfschifffahrtsgesellschaftskapitänsmütze „Größe L“ – noch lieferbar?"),
        ("Emoji with skin tones and ZWJ sequences",
         "Great service 👍🏽👩‍👩‍👧‍👦❤️‍🔥 thanks!!"),
        ("Vietnamese with combining diacritics (NFD)",
         unicodedata.normalize("NFD", "Cảm ơn bạn rất nhiều, hẹn gặp lại!")),
        ("Polish with typographic quotes",
         "Zamówienie „ekspresowe” dotarło po tygodniu… 😕"),
    ]
    for k, (desc, text) in enumerate(samples):
        out.append(benign(req("GET", "/search?" + query([("q", text)]), site_headers(
            "www.example.com", ua=[CHROME_UA, SAFARI_UA][k % 2])), KIND, desc + " (search)",
            "placement:query"))
        out.append(benign(req("POST", "/api/v1/comments", xhr_headers("www.example.com"),
                              js({"post_id": 901 + k, "body": text}), "application/json"),
                          KIND, desc + " (comment JSON)", "placement:json"))
    return out


def main() -> None:
    tests: list[dict[str, Any]] = []
    for i, lg in enumerate(LANGS):
        tests += _lang_tests(i, lg)
    tests += _mixed()
    write("benign/0005-i18n.yaml", 5, "Benign: non-English text in 18 languages in queries, "
          "forms, JSON, paths and cookies", tests)


if __name__ == "__main__":
    main()
