//! Deterministic synthetic citizen records for tests and demos.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jpeg_encoder::{ColorType, Encoder};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::national_id::national_id_check_digit;
use super::wire::{WireFingerprint, WireOffice, WirePhoto, WireRecord, WireRequest, WireText};
use super::{
    FingerPosition, IssuingOffice, JalaliDate, ReplacementReason, Request, MIN_AGE_YEARS,
    TEMPLATE_FORMAT,
};

/// (Persian, Latin) pairs.
type Pair = (&'static str, &'static str);

pub(crate) const MALE_NAMES: [Pair; 42] = [
    ("محمد", "Mohammad"),
    ("علی", "Ali"),
    ("حسین", "Hossein"),
    ("رضا", "Reza"),
    ("مهدی", "Mahdi"),
    ("حسن", "Hasan"),
    ("امیر", "Amir"),
    ("مجید", "Majid"),
    ("سعید", "Saeed"),
    ("احمد", "Ahmad"),
    ("مرتضی", "Morteza"),
    ("مصطفی", "Mostafa"),
    ("جواد", "Javad"),
    ("حمید", "Hamid"),
    ("محسن", "Mohsen"),
    ("کامران", "Kamran"),
    ("بهروز", "Behrouz"),
    ("داریوش", "Dariush"),
    ("کوروش", "Kourosh"),
    ("فرهاد", "Farhad"),
    ("بابک", "Babak"),
    ("آرش", "Arash"),
    ("پویا", "Pouya"),
    ("سینا", "Sina"),
    ("نیما", "Nima"),
    ("امید", "Omid"),
    ("وحید", "Vahid"),
    ("یاسر", "Yaser"),
    ("ابراهیم", "Ebrahim"),
    ("اسماعیل", "Esmaeil"),
    ("یوسف", "Yousef"),
    ("هادی", "Hadi"),
    ("مسعود", "Masoud"),
    ("منصور", "Mansour"),
    ("پرویز", "Parviz"),
    ("شهرام", "Shahram"),
    ("بهزاد", "Behzad"),
    ("سامان", "Saman"),
    ("میلاد", "Milad"),
    ("عباس", "Abbas"),
    ("کاوه", "Kaveh"),
    ("محمدرضا", "Mohammad-Reza"),
];

pub(crate) const FEMALE_NAMES: [Pair; 41] = [
    ("فاطمه", "Fatemeh"),
    ("زهرا", "Zahra"),
    ("مریم", "Maryam"),
    ("زینب", "Zeynab"),
    ("معصومه", "Masoumeh"),
    ("سارا", "Sara"),
    ("نرگس", "Narges"),
    ("لیلا", "Leila"),
    ("مینا", "Mina"),
    ("شیرین", "Shirin"),
    ("پریسا", "Parisa"),
    ("نازنین", "Nazanin"),
    ("الهام", "Elham"),
    ("سمیرا", "Samira"),
    ("مهسا", "Mahsa"),
    ("نیلوفر", "Niloufar"),
    ("آزاده", "Azadeh"),
    ("فرشته", "Fereshteh"),
    ("سحر", "Sahar"),
    ("ساناز", "Sanaz"),
    ("شیما", "Shima"),
    ("هانیه", "Haniyeh"),
    ("ریحانه", "Reyhaneh"),
    ("کوثر", "Kowsar"),
    ("الناز", "Elnaz"),
    ("مهناز", "Mahnaz"),
    ("پروانه", "Parvaneh"),
    ("طاهره", "Tahereh"),
    ("اعظم", "A'zam"),
    ("منیژه", "Manijeh"),
    ("گلناز", "Golnaz"),
    ("یاسمن", "Yasaman"),
    ("ترانه", "Taraneh"),
    ("رویا", "Roya"),
    ("نسرین", "Nasrin"),
    ("فرزانه", "Farzaneh"),
    ("آتنا", "Atena"),
    ("بهاره", "Bahareh"),
    ("هستی", "Hasti"),
    ("کیمیا", "Kimia"),
    ("فاطمه‌زهرا", "Fatemeh-Zahra"),
];

pub(crate) const FAMILY_NAMES: [Pair; 52] = [
    ("رضایی", "Rezaei"),
    ("محمدی", "Mohammadi"),
    ("حسینی", "Hosseini"),
    ("احمدی", "Ahmadi"),
    ("کریمی", "Karimi"),
    ("موسوی", "Mousavi"),
    ("جعفری", "Ja'fari"),
    ("صادقی", "Sadeghi"),
    ("رحیمی", "Rahimi"),
    ("کاظمی", "Kazemi"),
    ("هاشمی", "Hashemi"),
    ("قاسمی", "Ghasemi"),
    ("اکبری", "Akbari"),
    ("عباسی", "Abbasi"),
    ("نوری", "Nouri"),
    ("حیدری", "Heydari"),
    ("ملکی", "Maleki"),
    ("شریفی", "Sharifi"),
    ("نجفی", "Najafi"),
    ("یزدانی", "Yazdani"),
    ("تهرانی", "Tehrani"),
    ("شیرازی", "Shirazi"),
    ("اصفهانی", "Esfahani"),
    ("کرمانی", "Kermani"),
    ("طباطبایی", "Tabatabaei"),
    ("زمانی", "Zamani"),
    ("مرادی", "Moradi"),
    ("فرهادی", "Farhadi"),
    ("سلیمانی", "Soleimani"),
    ("امینی", "Amini"),
    ("باقری", "Bagheri"),
    ("ابراهیمی", "Ebrahimi"),
    ("یوسفی", "Yousefi"),
    ("قربانی", "Ghorbani"),
    ("صالحی", "Salehi"),
    ("رستمی", "Rostami"),
    ("میرزایی", "Mirzaei"),
    ("جلالی", "Jalali"),
    ("نیک‌نام", "Niknam"),
    ("علی‌پور", "Alipour"),
    ("خسروی", "Khosravi"),
    ("بهرامی", "Bahrami"),
    ("پورمحمدی", "Pourmohammadi"),
    ("عزیزی", "Azizi"),
    ("توکلی", "Tavakoli"),
    ("مختاری", "Mokhtari"),
    ("فتحی", "Fathi"),
    ("شجاعی", "Shoja'i"),
    ("آقایی", "Aghaei"),
    ("دلاوری", "Delavari"),
    ("قاضی زاده", "Ghazi Zadeh"),
    ("گودرزی", "Goudarzi"),
];

pub(crate) const PLACES: [Pair; 32] = [
    ("تهران", "Tehran"),
    ("مشهد", "Mashhad"),
    ("اصفهان", "Isfahan"),
    ("شیراز", "Shiraz"),
    ("تبریز", "Tabriz"),
    ("کرج", "Karaj"),
    ("قم", "Qom"),
    ("اهواز", "Ahvaz"),
    ("کرمانشاه", "Kermanshah"),
    ("ارومیه", "Urmia"),
    ("رشت", "Rasht"),
    ("زاهدان", "Zahedan"),
    ("کرمان", "Kerman"),
    ("همدان", "Hamedan"),
    ("یزد", "Yazd"),
    ("اردبیل", "Ardabil"),
    ("بندرعباس", "Bandar Abbas"),
    ("اراک", "Arak"),
    ("زنجان", "Zanjan"),
    ("سنندج", "Sanandaj"),
    ("قزوین", "Qazvin"),
    ("خرم‌آباد", "Khorramabad"),
    ("گرگان", "Gorgan"),
    ("ساری", "Sari"),
    ("بوشهر", "Bushehr"),
    ("بیرجند", "Birjand"),
    ("ایلام", "Ilam"),
    ("شهرکرد", "Shahrekord"),
    ("یاسوج", "Yasuj"),
    ("سمنان", "Semnan"),
    ("کاشان", "Kashan"),
    ("نیشابور", "Neyshabur"),
];

/// Consulate posts used in samples.
const CONSULATES: [&str; 12] = [
    "AE-DXB", "AE-AUH", "TR-IST", "TR-ANK", "DE-HAM", "DE-FRA", "GB-LON", "FR-PAR", "IQ-NJF",
    "AM-EVN", "OM-MCT", "MY-KUL",
];

/// One of a constant, non-empty table.
#[allow(clippy::indexing_slicing, reason = "k < N")]
fn pick<T: Copy, const N: usize>(rng: &mut ChaCha8Rng, items: &[T; N]) -> T {
    items[rng.random_range(0..N)]
}

fn text(p: Pair) -> WireText {
    WireText {
        fa: p.0.to_string(),
        latin: p.1.to_string(),
    }
}

/// A random valid national ID (never ten equal digits).
fn national_id(rng: &mut ChaCha8Rng) -> String {
    loop {
        let mut d = [0u8; 9];
        for x in d.iter_mut() {
            *x = rng.random_range(0..10u8);
        }
        let check = national_id_check_digit(&d);
        if d.iter().all(|&x| x == check) {
            continue;
        }
        return d
            .iter()
            .chain(std::iter::once(&check))
            .map(|x| char::from(b'0' + x))
            .collect();
    }
}

/// A birth date giving an age of 15..=90 on `request`.
fn birth_date(rng: &mut ChaCha8Rng, request: JalaliDate) -> JalaliDate {
    loop {
        let age = rng.random_range(MIN_AGE_YEARS as i32..=90);
        let year = request.year() - age - rng.random_range(0..=1);
        let month = rng.random_range(1..=12u8);
        let Some(days) = JalaliDate::days_in_month(year, month) else {
            continue;
        };
        let day = rng.random_range(1..=days);
        let Ok(date) = JalaliDate::new(year, month, day) else {
            continue;
        };
        if date
            .age_on(request)
            .is_some_and(|a| (MIN_AGE_YEARS..=90).contains(&a))
        {
            return date;
        }
    }
}

type Rgb = [u8; 3];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, bg: Rgb) -> Self {
        let mut px = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            // Gentle vertical gradient, as on studio backdrops.
            let shade = (y * 24 / h) as u8;
            for _ in 0..w {
                px.extend(bg.map(|c| c.saturating_sub(shade)));
            }
        }
        Canvas { w, h, px }
    }

    /// Fills the ellipse centred at (cx, cy) with radii (rx, ry).
    fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, colour: Rgb) {
        for y in 0..self.h {
            for x in 0..self.w {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                if dx * dx + dy * dy <= 1.0 {
                    let i = (y * self.w + x) * 3;
                    if let Some(p) = self.px.get_mut(i..i + 3) {
                        p.copy_from_slice(&colour);
                    }
                }
            }
        }
    }

    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: Rgb) {
        for y in y0.min(self.h)..y1.min(self.h) {
            for x in x0.min(self.w)..x1.min(self.w) {
                let i = (y * self.w + x) * 3;
                if let Some(p) = self.px.get_mut(i..i + 3) {
                    p.copy_from_slice(&colour);
                }
            }
        }
    }
}

/// Draws a simple passport-style portrait (120×160) and encodes it as a
/// baseline JPEG. Skin, hair, clothes, background and proportions vary with
/// the seed; women wear a headscarf, as in Iranian ID photos.
pub(crate) fn portrait_jpeg(seed: u64, female: bool) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F0C0);
    let (w, h) = (120usize, 160usize);
    let backgrounds: [Rgb; 4] = [
        [235, 238, 242],
        [214, 226, 240],
        [226, 230, 226],
        [245, 245, 245],
    ];
    let skins: [Rgb; 5] = [
        [241, 204, 170],
        [224, 178, 140],
        [198, 150, 112],
        [233, 190, 160],
        [170, 122, 90],
    ];
    let hairs: [Rgb; 4] = [[30, 24, 20], [60, 42, 30], [90, 70, 50], [120, 120, 120]];
    let clothes: [Rgb; 5] = [
        [40, 50, 80],
        [30, 30, 30],
        [90, 90, 100],
        [70, 40, 40],
        [40, 70, 60],
    ];
    let mut c = Canvas::new(w, h, pick(&mut rng, &backgrounds));
    let skin = pick(&mut rng, &skins);
    let hair = pick(&mut rng, &hairs);
    let cloth = pick(&mut rng, &clothes);
    let cx = 60.0 + rng.random_range(-4.0f32..4.0);
    let face_rx = rng.random_range(24.0f32..30.0);
    let face_ry = rng.random_range(32.0f32..38.0);
    let face_cy = 68.0 + rng.random_range(-3.0f32..3.0);

    // Shoulders and neck.
    c.ellipse(cx, 168.0, 58.0, 40.0, cloth);
    c.rect(
        (cx - 10.0) as usize,
        (face_cy + 20.0) as usize,
        (cx + 10.0) as usize,
        134,
        skin,
    );
    if female {
        let scarf = pick(
            &mut rng,
            &[[20u8, 20, 25], [60, 30, 40], [40, 45, 70], [85, 70, 60]],
        );
        c.ellipse(cx, face_cy + 4.0, face_rx + 12.0, face_ry + 14.0, scarf);
        c.ellipse(cx, 150.0, 50.0, 30.0, scarf);
    } else {
        c.ellipse(
            cx,
            face_cy - face_ry * 0.45,
            face_rx + 3.0,
            face_ry * 0.7,
            hair,
        );
    }
    c.ellipse(cx, face_cy, face_rx, face_ry, skin);
    if !female && rng.random_bool(0.4) {
        // Beard.
        c.ellipse(
            cx,
            face_cy + face_ry * 0.55,
            face_rx * 0.85,
            face_ry * 0.45,
            hair,
        );
        c.ellipse(
            cx,
            face_cy + face_ry * 0.28,
            face_rx * 0.7,
            face_ry * 0.3,
            skin,
        );
    }
    // Eyes, brows, nose, mouth.
    let eye_dx = face_rx * 0.42;
    let eye_y = face_cy - face_ry * 0.12;
    for side in [-1.0f32, 1.0] {
        let ex = cx + side * eye_dx;
        c.ellipse(ex, eye_y, 5.0, 2.6, [250, 250, 250]);
        c.ellipse(ex, eye_y, 2.2, 2.2, [50, 35, 25]);
        c.rect(
            (ex - 6.0) as usize,
            (eye_y - 7.0) as usize,
            (ex + 6.0) as usize,
            (eye_y - 5.0) as usize,
            hair,
        );
    }
    let nose = skin.map(|v| v.saturating_sub(35));
    c.rect(
        (cx - 1.0) as usize,
        (eye_y + 4.0) as usize,
        (cx + 2.0) as usize,
        (face_cy + face_ry * 0.25) as usize,
        nose,
    );
    c.ellipse(
        cx,
        face_cy + face_ry * 0.5,
        face_rx * 0.32,
        2.6,
        [170, 80, 80],
    );

    let mut out = Vec::new();
    #[allow(
        clippy::expect_used,
        reason = "a fixed-size in-memory RGB image always encodes"
    )]
    Encoder::new(&mut out, 70)
        .encode(&c.px, w as u16, h as u16, ColorType::Rgb)
        .expect("encoding an in-memory RGB image succeeds");
    out
}

/// Generates `count` synthetic records as JSON lines, deterministic for a
/// given `seed`. `templates(person_seed, position)` supplies each fingerprint
/// template; it is called once or twice per person. Every line passes
/// [`parse_record`](super::parse_record) provided the supplied templates are
/// accepted by the validator used there.
pub fn sample_records(
    count: usize,
    seed: u64,
    request_date: JalaliDate,
    templates: &mut dyn FnMut(u64, FingerPosition) -> Vec<u8>,
) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut used_ids = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let person_seed: u64 = rng.random();
        let female = rng.random_bool(0.5);
        let given = if female {
            pick(&mut rng, &FEMALE_NAMES)
        } else {
            pick(&mut rng, &MALE_NAMES)
        };
        let nid = loop {
            let n = national_id(&mut rng);
            if used_ids.insert(n.clone()) {
                break n;
            }
        };
        let office = if rng.random_bool(0.1) {
            let code = pick(&mut rng, &CONSULATES);
            IssuingOffice::Consulate {
                country: code[..2].to_string(),
                post: code[3..].to_string(),
            }
        } else {
            IssuingOffice::Domestic {
                code: format!("{:04}", rng.random_range(1000..=9999u32)),
            }
        };
        let request = if rng.random_bool(0.1) {
            let reason = pick(&mut rng, &ReplacementReason::ALL);
            let serial = rng
                .random_bool(0.7)
                .then(|| format!("{:016X}", rng.random::<u64>()));
            Request::Replacement {
                reason,
                previous_card_serial: serial,
            }
        } else {
            Request::FirstIssue
        };
        let birth = birth_date(&mut rng, request_date);
        let right = [
            FingerPosition::RightIndex,
            FingerPosition::RightThumb,
            FingerPosition::RightMiddle,
        ];
        let left = [
            FingerPosition::LeftIndex,
            FingerPosition::LeftThumb,
            FingerPosition::LeftMiddle,
        ];
        let mut positions = vec![pick(&mut rng, &right)];
        if rng.random_bool(0.8) {
            positions.push(pick(&mut rng, &left));
        }
        let fingerprints = positions
            .into_iter()
            .map(|p| WireFingerprint {
                position: p.as_str(),
                format: TEMPLATE_FORMAT,
                data: STANDARD.encode(templates(person_seed, p)),
            })
            .collect();
        let record = WireRecord {
            record_id: format!("R-{:06}", i + 1),
            national_id: nid,
            given_name: text(given),
            family_name: text(pick(&mut rng, &FAMILY_NAMES)),
            father_name: text(pick(&mut rng, &MALE_NAMES)),
            sex: if female { "F" } else { "M" },
            birth_date: birth.to_string(),
            birth_certificate_number: rng.random_range(1..=9_999_999u32).to_string(),
            birth_place: text(pick(&mut rng, &PLACES)),
            issuing_office: WireOffice::from_office(&office),
            request: WireRequest::from_request(&request),
            request_date: request_date.to_string(),
            photo: WirePhoto {
                format: "jpeg",
                data: STANDARD.encode(portrait_jpeg(person_seed, female)),
            },
            fingerprints,
        };
        out.push(record.to_line());
    }
    out
}

/// A large batch fast, for benchmarks and tests of batch loading: `count`
/// JSON lines written to `out`, record `i` (0-based) a copy of
/// `base[i % base.len()]` (lines of [`sample_records`]) with record_id
/// `{prefix}{i+1:08}` and a fresh valid national ID, so that every line is
/// a distinct valid record. Validating a copy costs what validating its
/// original does; making it costs a copy.
pub fn replicate_records(
    base: &[String],
    count: usize,
    prefix: &str,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    // Each base line as the text around its two ids, and whether
    // record_id comes first.
    let mut templates: Vec<([String; 3], bool)> = Vec::with_capacity(base.len());
    for (i, line) in base.iter().enumerate() {
        let mut v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("base line {}: {e}", i + 1)))?;
        let Some(obj) = v.as_object_mut() else {
            return Err(bad(format!("base line {}: not a JSON object", i + 1)));
        };
        obj.insert("record_id".into(), "@@RID@@".into());
        obj.insert("national_id".into(), "@@NID@@".into());
        let text = v.to_string();
        let (Some(r), Some(n)) = (text.find("\"@@RID@@\""), text.find("\"@@NID@@\"")) else {
            return Err(bad(format!("base line {}: ids not placed", i + 1)));
        };
        let (a, b) = if r < n { (r, n) } else { (n, r) };
        let cut = |from: usize, to: usize| text.get(from..to).unwrap_or_default().to_string();
        templates.push(([cut(0, a), cut(a + 9, b), cut(b + 9, text.len())], r < n));
    }
    if templates.is_empty() {
        return Err(bad("no base records".into()));
    }
    let mut body: u64 = 100_000_000;
    for i in 0..count {
        let k = i % templates.len();
        let Some((t, rid_first)) = templates.get(k) else {
            continue;
        };
        let rid = format!("\"{prefix}{:08}\"", i + 1);
        let nid = loop {
            body += 1;
            let s = format!("{body:09}");
            let mut d = [0u8; 9];
            for (x, b) in d.iter_mut().zip(s.bytes()) {
                *x = b - b'0';
            }
            let id = format!("{s}{}", national_id_check_digit(&d));
            if super::is_valid_national_id(&id) {
                break format!("\"{id}\"");
            }
        };
        let (first, second) = if *rid_first {
            (&rid, &nid)
        } else {
            (&nid, &rid)
        };
        writeln!(out, "{}{first}{}{second}{}", t[0], t[1], t[2])?;
    }
    Ok(())
}
