//! The naive model's reading aids: a normalized view of text that maps back to the original, a
//! phrase matcher, and the model's own vocabulary, sorted by what a phrase means to an assistant.
//!
//! The vocabulary is written from the languages themselves (en, es, fr, de, vi, zh, ar), one list per
//! semantic class, not from any attack text; it is private to the naive model. Phrases are folded
//! like the text they are matched against, so they are written here in their ordinary spelling.
//! A phrase ending in `*` is a stem (it matches any ending); a phrase that starts with a Latin
//! letter matches whole words only, one in another script matches anywhere (Chinese has no spaces,
//! Arabic attaches its conjunctions and pronouns to the word).

use super::Lang;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// Text folded for matching: NFKD, combining marks and invisible characters dropped, lower case,
/// digits inside words read as the letters they imitate, spaced-out letters joined, white space
/// collapsed. `at[i]` is the byte offset in the original of the character that gave byte `i`, so a
/// match found here can be cut out of the original with its case and accents.
#[derive(Debug, Clone)]
pub(super) struct Norm {
    pub text: String,
    at: Vec<usize>,
}

impl Norm {
    pub fn of(original: &str) -> Self {
        let mut chars: Vec<(char, usize)> = Vec::with_capacity(original.len());
        for (i, c) in original.char_indices() {
            if invisible(c) {
                continue;
            }
            for d in std::iter::once(c).nfkd() {
                for l in d.to_lowercase() {
                    if mark(l) {
                        continue;
                    }
                    match l {
                        'đ' => chars.push(('d', i)),
                        'ß' => chars.extend([('s', i), ('s', i)]),
                        'æ' => chars.extend([('a', i), ('e', i)]),
                        'œ' => chars.extend([('o', i), ('e', i)]),
                        'ø' => chars.push(('o', i)),
                        'ł' => chars.push(('l', i)),
                        'ى' => chars.push(('ي', i)),
                        '’' | '‘' | '`' | '´' | 'ʼ' => chars.push(('\'', i)),
                        '“' | '”' | '„' | '«' | '»' | '「' | '」' | '『' | '』' => {
                            chars.push(('"', i))
                        }
                        '–' | '—' | '‐' | '‑' | '−' => chars.push(('-', i)),
                        '、' | '，' => chars.push((',', i)),
                        c if c.is_whitespace() => chars.push((' ', i)),
                        c => chars.push((c, i)),
                    }
                }
            }
        }
        let chars = collapse_spaces(read_leet(join_spaced(chars)));
        let mut text = String::with_capacity(chars.len());
        let mut at = Vec::with_capacity(chars.len() + 1);
        for (c, i) in chars {
            text.push(c);
            at.extend(std::iter::repeat_n(i, c.len_utf8()));
        }
        at.push(original.len());
        Norm { text, at }
    }

    /// The original byte offset of normalized byte `i` (`text.len()` maps to the original's end).
    pub fn orig(&self, i: usize) -> usize {
        self.at
            .get(i)
            .or(self.at.last())
            .copied()
            .unwrap_or_default()
    }
}

/// Zero-width characters, direction marks and soft hyphens: they change nothing a reader sees.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{0640}')
}

/// Combining marks (accents, Vietnamese tones, Arabic vowel signs), dropped after NFKD.
fn mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}' | '\u{064B}'..='\u{065F}' | '\u{0670}'
        | '\u{06D6}'..='\u{06ED}')
}

/// `p r i n t`, `p-r-i-n-t`, `p.r.i.n.t`: three or more single letters with one separator between
/// them are read as one word (a wider gap between such runs stays a space).
fn join_spaced(chars: Vec<(char, usize)>) -> Vec<(char, usize)> {
    let letter = |k: usize| chars.get(k).is_some_and(|c| c.0.is_alphabetic());
    let single = |k: usize| letter(k) && (k == 0 || !letter(k - 1)) && !letter(k + 1);
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if single(i) {
            if let Some(&(sep, _)) = chars.get(i + 1) {
                if matches!(sep, ' ' | '-' | '.' | '_' | '*' | '·') {
                    let mut run = vec![i];
                    let mut j = i;
                    while chars.get(j + 1).map(|c| c.0) == Some(sep) && single(j + 2) {
                        j += 2;
                        run.push(j);
                    }
                    if run.len() >= 3 {
                        out.extend(run.into_iter().map(|k| chars[k]));
                        i = j + 1;
                        continue;
                    }
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `1gn0re`, `pr1nt`: digits between letters (or one leading digit before three letters or more)
/// are read as the letters they imitate. Codes with trailing digits (`base64`, `rot13`) and plain
/// numbers stay as they are.
fn read_leet(mut chars: Vec<(char, usize)>) -> Vec<(char, usize)> {
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].0.is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].0.is_alphanumeric() {
            i += 1;
        }
        let word = &chars[start..i];
        let letters = word.iter().filter(|c| c.0.is_alphabetic()).count();
        let first_letter = word.iter().position(|c| c.0.is_alphabetic());
        let last_letter = word.iter().rposition(|c| c.0.is_alphabetic());
        let (Some(first), Some(last)) = (first_letter, last_letter) else {
            continue;
        };
        let leading = first == 1 && letters >= 3 && last == word.len() - 1;
        for (k, c) in chars[start..i].iter_mut().enumerate() {
            if (k > first && k < last) || (leading && k == 0) {
                c.0 = match c.0 {
                    '0' => 'o',
                    '1' => 'i',
                    '3' => 'e',
                    '4' => 'a',
                    '5' => 's',
                    '7' => 't',
                    other => other,
                };
            }
        }
    }
    chars
}

fn collapse_spaces(chars: Vec<(char, usize)>) -> Vec<(char, usize)> {
    let mut out: Vec<(char, usize)> = Vec::with_capacity(chars.len());
    for c in chars {
        if c.0 == ' ' && out.last().is_none_or(|l| l.0 == ' ') {
            continue;
        }
        out.push(c);
    }
    if out.last().is_some_and(|l| l.0 == ' ') {
        out.pop();
    }
    out
}

#[derive(Debug)]
struct Phrase {
    text: String,
    /// Latin phrases match whole words; other scripts match anywhere.
    bounded: bool,
    /// Ends in `*`: any ending.
    stem: bool,
}

/// A list of phrases of one meaning.
#[derive(Debug)]
pub(super) struct Words(Vec<Phrase>);

fn word_char(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

impl Words {
    pub fn new(list: &[&str]) -> Self {
        Words(
            list.iter()
                .filter_map(|p| {
                    let stem = p.ends_with('*');
                    let text = Norm::of(p.trim_end_matches('*')).text;
                    let first = text.chars().next()?;
                    Some(Phrase {
                        bounded: first.is_ascii() || first.is_whitespace(),
                        stem,
                        text,
                    })
                })
                .collect(),
        )
    }

    fn fits(&self, p: &Phrase, hay: &str, start: usize) -> bool {
        if !p.bounded {
            return true;
        }
        let end = start + p.text.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let edge = |c: Option<char>, inner: Option<char>| !word_char(inner) || !word_char(c);
        edge(before, p.text.chars().next()) && (p.stem || edge(after, p.text.chars().next_back()))
    }

    /// The earliest match at or after byte `from`: (start, end).
    pub fn find_from(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        let tail = hay.get(from..)?;
        let mut best: Option<(usize, usize)> = None;
        for p in &self.0 {
            let hit = tail
                .match_indices(p.text.as_str())
                .map(|(i, _)| from + i)
                .find(|&i| self.fits(p, hay, i));
            if let Some(i) = hit {
                let span = (i, i + p.text.len());
                best = match best {
                    Some(b) if b.0 < span.0 || (b.0 == span.0 && b.1 >= span.1) => Some(b),
                    _ => Some(span),
                };
            }
        }
        best
    }

    pub fn find(&self, hay: &str) -> Option<(usize, usize)> {
        self.find_from(hay, 0)
    }

    pub fn has(&self, hay: &str) -> bool {
        self.find(hay).is_some()
    }

    /// Every match, in order of start.
    pub fn all(&self, hay: &str) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = self
            .0
            .iter()
            .flat_map(|p| {
                hay.match_indices(p.text.as_str())
                    .filter(|&(i, _)| self.fits(p, hay, i))
                    .map(|(i, m)| (i, i + m.len()))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The end of the longest phrase that starts exactly at `pos`.
    pub fn at(&self, hay: &str, pos: usize) -> Option<usize> {
        let tail = hay.get(pos..)?;
        self.0
            .iter()
            .filter(|p| tail.starts_with(p.text.as_str()) && self.fits(p, hay, pos))
            .map(|p| pos + p.text.len())
            .max()
    }
}

macro_rules! words {
    ($name:ident, $doc:literal, [$($w:literal),* $(,)?]) => {
        #[doc = $doc]
        pub(super) static $name: LazyLock<Words> = LazyLock::new(|| Words::new(&[$($w),*]));
    };
}

#[rustfmt::skip]
words!(
    FILLER,
    "Words that may stand before the verb of an imperative: politeness, sequence, and frames that \
     hand the verb to the reader (`you must`, `I want you to`, `can you`).",
    [
        // en
        "please", "kindly", "now", "then", "also", "and", "just", "first", "firstly", "next",
        "finally", "ok", "okay", "so", "hey", "hi", "hello", "right away", "immediately", "simply",
        "from now on", "go ahead and", "you must", "you should", "you need to", "you have to",
        "you will", "you are to", "you're to", "you are required to", "make sure to",
        "make sure you", "be sure to", "don't forget to", "do not forget to", "remember to",
        "i want you to", "i need you to", "i'd like you to", "i would like you to", "can you",
        "could you", "would you", "will you", "you can", "the assistant must",
        "the assistant should", "the assistant will", "the ai must", "the ai should",
        "the model must", "the model should", "asked you to", "wants you to", "needs you to",
        "instructs you to", "would like you to", "requests that you", "it is important that you",
        "always", "silently", "quietly",
        // es
        "por favor", "ahora", "luego", "despues", "tambien", "y", "primero", "debes", "deberas",
        "tienes que", "necesito que", "quiero que", "puedes", "podrias", "asegurate de",
        "no olvides", "a partir de ahora", "el asistente debe",
        // fr
        "s'il te plait", "s'il vous plait", "stp", "svp", "maintenant", "ensuite", "puis", "aussi",
        "et", "d'abord", "tu dois", "vous devez", "il faut", "je veux que tu", "je veux que vous",
        "peux-tu", "pouvez-vous", "n'oublie pas de", "n'oubliez pas de", "assure-toi de",
        "desormais", "l'assistant doit",
        // de
        "bitte", "jetzt", "nun", "dann", "auch", "und", "zuerst", "du musst", "sie mussen",
        "du sollst", "sie sollen", "ich mochte, dass du", "ich mochte dass du", "kannst du",
        "konnen sie", "vergiss nicht", "vergessen sie nicht", "ab jetzt", "der assistent muss",
        // vi
        "hay", "vui long", "xin", "bay gio", "sau do", "roi", "cung", "va", "truoc tien",
        "ban phai", "ban can", "ban nen", "toi muon ban", "ban co the", "dung quen", "tu gio",
        // zh
        "请", "现在", "然后", "也", "并且", "并", "首先", "你必须", "你需要", "你应该", "务必", "麻烦", "帮我", "我要你", "你能",
        "记得", "立即", "从现在起",
        // ar
        "من فضلك", "رجاء", "الرجاء", "الآن", "ثم", "أيضا", "و ", "أولا", "يجب عليك أن", "يجب عليك",
        "يجب أن", "عليك أن", "أريدك أن", "هل يمكنك", "لا تنس", "تأكد من",
    ]
);

#[rustfmt::skip]
words!(
    JOINER,
    "Conjunctions after which a second imperative may start in the same sentence.",
    [
        "and", "then", "and then", "also", "y", "luego", "et", "puis", "und", "dann", "va", "roi",
        "sau do", "并", "然后", "再", "并且", "ثم", "و",
    ]
);

#[rustfmt::skip]
words!(
    ROLE,
    "Names of the roles a line may be labelled with when it speaks to the model as its operator.",
    [
        "system", "assistant", "ai", "bot", "chatbot", "model", "llm", "admin", "administrator",
        "developer", "operator", "root", "sudo", "sistema", "asistente", "systeme", "assistent",
        "he thong", "tro ly", "系统", "助手", "助理", "管理员", "开发者", "النظام", "المساعد", "المطور",
        "المسؤول",
    ]
);

#[rustfmt::skip]
words!(
    ADDRESS,
    "Phrases that only make sense addressed to the assistant itself: vocatives, chat-template \
     markers, and talk of its task, its answer or what the user wants it to do.",
    [
        // markers
        "[system]", "<system>", "<|system|>", "|>system", "### system", "### instruction", "[inst]",
        "<<sys>>", "[assistant]", "<assistant>",
        // en
        "dear assistant", "dear ai", "hey assistant", "hi assistant", "hello assistant",
        "attention assistant", "attention ai", "note to the assistant", "note to the ai",
        "note to ai", "note for the assistant", "note for the ai", "message to the assistant",
        "message for the assistant", "message for the ai", "instructions for the assistant",
        "instructions for the ai", "instructions for the model", "to the ai", "to the assistant",
        "to the model", "to the chatbot", "to any ai", "if you are an ai", "if you're an ai",
        "if you are a language model", "if you are an assistant", "if you are an llm",
        "if you are a chatbot", "ai reading this", "llm reading this", "assistant reading this",
        "model reading this", "your task", "your new task", "your real task", "your actual task",
        "your goal", "your mission", "before you answer", "before answering", "before you respond",
        "before responding", "before you reply", "before replying", "when you answer",
        "when answering", "when you respond", "when you summarize", "when summarizing",
        "in your answer", "in your response", "in your reply", "at the end of your answer",
        "at the end of your response", "the user wants you", "the user asked you",
        "the user has asked you", "the user would like you", "the user requests that you",
        "the user instructs you", "the customer wants you", "the customer asked you",
        "new instructions", "updated instructions", "additional instructions",
        "important instructions", "new rules", "new directive", "system override", "admin override",
        "the assistant must", "the assistant should", "the ai must", "the ai should",
        "the model must", "the model should",
        // es
        "querido asistente", "estimado asistente", "atencion asistente", "nota para el asistente",
        "nota para la ia", "instrucciones para el asistente", "instrucciones para la ia",
        "si eres una ia", "si eres un asistente", "si eres un modelo de lenguaje", "tu tarea",
        "tu mision", "antes de responder", "antes de contestar", "al responder", "en tu respuesta",
        "el usuario quiere que", "el usuario te pide", "el usuario ha pedido",
        "nuevas instrucciones", "instrucciones actualizadas", "el asistente debe",
        // fr
        "cher assistant", "chere ia", "attention assistant", "note pour l'assistant",
        "note a l'assistant", "note pour l'ia", "note a l'ia", "instructions pour l'assistant",
        "instructions pour l'ia", "si tu es une ia", "si vous etes une ia", "si tu es un assistant",
        "si tu es un modele de langage", "ta tache", "votre tache", "ta mission", "votre mission",
        "avant de repondre", "en repondant", "dans ta reponse", "dans votre reponse",
        "l'utilisateur veut que", "l'utilisateur te demande", "l'utilisateur vous demande",
        "nouvelles instructions", "nouvelles consignes", "l'assistant doit",
        // de
        "lieber assistent", "liebe ki", "achtung assistent", "achtung ki",
        "hinweis fur den assistenten", "hinweis an den assistenten", "hinweis fur die ki",
        "hinweis an die ki", "notiz fur die ki", "anweisungen fur den assistenten",
        "anweisungen fur die ki", "wenn du eine ki bist", "falls du eine ki bist",
        "wenn du ein sprachmodell bist", "deine aufgabe", "ihre aufgabe", "bevor du antwortest",
        "bevor sie antworten", "in deiner antwort", "in ihrer antwort", "der nutzer mochte",
        "der benutzer mochte", "der nutzer bittet dich", "der benutzer bittet dich",
        "neue anweisungen", "aktualisierte anweisungen", "der assistent muss",
        // vi
        "gui tro ly", "tro ly than men", "chu y tro ly", "luu y cho tro ly", "ghi chu cho tro ly",
        "ghi chu cho ai", "huong dan cho tro ly", "huong dan cho ai", "neu ban la ai",
        "neu ban la tro ly", "neu ban la mo hinh ngon ngu", "nhiem vu cua ban", "truoc khi tra loi",
        "khi tra loi", "trong cau tra loi", "nguoi dung muon ban", "nguoi dung yeu cau ban",
        "huong dan moi", "chi thi moi", "tro ly phai",
        // zh
        "亲爱的助手", "助手注意", "致助手", "致ai", "给助手的", "给ai的", "如果你是ai", "如果你是人工智能", "如果你是语言模型", "如果你是助手",
        "你的任务", "回答之前", "回答前", "在你的回答中", "回答时", "用户希望你", "用户要求你", "用户让你", "新的指令", "新指令", "更新的指令",
        "助手必须",
        // ar
        "عزيزي المساعد", "إلى المساعد", "ملاحظة للمساعد", "ملاحظة للذكاء الاصطناعي",
        "تعليمات للمساعد", "تعليمات للذكاء الاصطناعي", "إذا كنت ذكاء اصطناعيا", "إذا كنت مساعدا",
        "إذا كنت نموذج لغة", "مهمتك", "قبل أن تجيب", "قبل الإجابة", "قبل الرد", "في إجابتك",
        "في ردك", "المستخدم يريد منك", "يريد المستخدم منك", "طلب منك المستخدم", "تعليمات جديدة",
        "يجب على المساعد",
    ]
);

#[rustfmt::skip]
words!(
    SET_ASIDE,
    "Verbs that set earlier guidance aside: ignore, forget, override.",
    [
        "ignore", "disregard", "forget", "override", "bypass", "skip", "drop", "abandon", "discard",
        "do not follow", "don't follow", "stop following", "ignora", "ignore", "olvida", "olvide",
        "omite", "descarta", "haz caso omiso", "no sigas", "ignorez", "oublie", "oubliez",
        "ne tiens pas compte", "ne tenez pas compte", "ne suis pas", "ignoriere", "ignorieren sie",
        "vergiss", "vergessen sie", "missachte", "ubergehe", "befolge nicht", "bo qua", "quen",
        "phot lo", "lo di", "khong tuan theo", "忽略", "忘记", "无视", "忘掉", "不要理会", "不要遵守", "跳过",
        "تجاهل", "انس", "اهمل", "لا تتبع",
    ]
);

#[rustfmt::skip]
words!(
    GUIDANCE,
    "Earlier guidance as a whole: the noun phrases that `ignore` must govern to set the model's \
     rules aside (not `ignore my last e-mail`).",
    [
        "previous instructions", "prior instructions", "earlier instructions", "above instructions",
        "instructions above", "original instructions", "initial instructions", "all instructions",
        "all previous", "all prior", "all the instructions", "all of the above", "all rules",
        "any rules", "any restrictions", "all restrictions", "the rules", "your instructions",
        "your rules", "your guidelines", "your programming", "your training", "your restrictions",
        "your constraints", "your limitations", "your filters", "your system prompt",
        "the system prompt", "the above", "everything above", "everything before", "anything above",
        "what you were told", "everything you were told", "previous context", "prior directions",
        "safety guidelines", "content policy", "the previous", "instrucciones anteriores",
        "todas las instrucciones", "tus instrucciones", "tus reglas", "todo lo anterior",
        "las reglas", "instrucciones previas", "instructions precedentes",
        "toutes les instructions", "tes instructions", "vos instructions", "tes consignes",
        "vos consignes", "tout ce qui precede", "les regles", "consignes precedentes",
        "vorherigen anweisungen", "vorigen anweisungen", "alle anweisungen", "deine anweisungen",
        "ihre anweisungen", "alle regeln", "deine regeln", "alles vorherige", "alles davor",
        "alles oben", "bisherigen anweisungen", "die regeln", "huong dan truoc", "moi huong dan",
        "tat ca huong dan", "huong dan cua ban", "quy tac cua ban", "moi quy tac", "tat ca quy tac",
        "chi dan truoc", "moi thu o tren", "之前的指令", "以前的指令", "先前的指令", "所有指令", "上面的指令", "以上指令",
        "你的指令", "你的规则", "所有规则", "之前的所有", "以上所有", "上述指令", "التعليمات السابقة", "جميع التعليمات",
        "كل التعليمات", "تعليماتك", "قواعدك", "كل القواعد", "جميع القواعد", "ما سبق",
    ]
);

#[rustfmt::skip]
words!(
    PROMPT_STRONG,
    "The model's own instructions, named so that nothing else can be meant.",
    [
        "system prompt", "system-prompt", "systemprompt", "sys prompt", "system message",
        "system instructions", "initial prompt", "original prompt", "hidden prompt",
        "secret prompt", "full prompt", "entire prompt", "whole prompt", "exact prompt",
        "your prompt", "the prompt above", "prompt you were given", "pre-prompt", "preprompt",
        "meta prompt", "developer message", "hidden instructions", "secret instructions",
        "initial instructions", "original instructions", "instructions you were given",
        "you were told", "were you told", "you were given", "were you given", "text above",
        "words above", "everything above", "the lines above", "preceding text", "above this line",
        "beginning of this conversation", "your first message", "canary", "internal reference",
        "reference code", "secret code", "internal code", "your secret", "api key",
        // es
        "prompt del sistema", "mensaje del sistema", "instrucciones del sistema", "tu prompt",
        "su prompt", "instrucciones iniciales", "instrucciones originales", "instrucciones ocultas",
        "texto anterior", "referencia interna", "codigo secreto", "indicaciones del sistema",
        // fr
        "prompt systeme", "prompt du systeme", "message systeme", "message du systeme",
        "instructions systeme", "instructions initiales", "instructions d'origine",
        "instructions cachees", "texte ci-dessus", "reference interne", "ton prompt",
        "votre prompt", "code secret",
        // de
        "systemnachricht", "systemanweisung*", "system-anweisung*", "dein prompt", "deinen prompt",
        "ihr prompt", "ihren prompt", "ursprungliche anweisung*", "versteckte anweisung*",
        "geheime anweisung*", "text oben", "obigen text", "interne referenz", "geheimcode",
        // vi
        "loi nhac he thong", "prompt he thong", "lenh he thong", "thong diep he thong",
        "huong dan he thong", "huong dan ban dau", "huong dan an", "van ban phia tren",
        "tham chieu noi bo", "ma bi mat", "prompt cua ban",
        // zh
        "系统提示", "系统消息", "系统指令", "提示词", "初始指令", "原始指令", "隐藏指令", "上面的文字", "以上内容", "内部参考", "秘密代码",
        "你的提示",
        // ar
        "موجه النظام", "رسالة النظام", "تعليمات النظام", "التعليمات الأولية", "التعليمات الأصلية",
        "التعليمات المخفية", "النص أعلاه", "المرجع الداخلي", "الرمز السري",
    ]
);

#[rustfmt::skip]
words!(
    POSSESSIVE,
    "`your`, in the languages that put it before the noun.",
    [
        "your", "thy", "tu", "tus", "su", "sus", "vuestro*", "vuestra*", "ton", "ta", "tes",
        "votre", "vos", "dein*", "ihr*", "euer", "eure*",
    ]
);

#[rustfmt::skip]
words!(
    INSTRUCTION,
    "Nouns for a model's instructions, to be read with a possessive (`your secret rules`, \
     `deine geheimen Anweisungen`, `hướng dẫn ban đầu của bạn`, `你的初始提示`, `تعليماتك`).",
    [
        "instruction*", "rule*", "guideline*", "directive*", "prompt*", "configuration*",
        "programming", "instruccion*", "regla*", "directri*", "indicacion*", "pauta*",
        "configuracion*", "consigna*", "consigne*", "regle*", "anweisung*", "regel*", "vorgabe*",
        "richtlinie*", "instruktion*", "konfiguration*", "systemprompt*", "befehl*", "huong dan",
        "chi dan", "chi thi", "quy tac", "cau hinh", "loi nhac", "指令", "指示", "规则", "提示", "设定", "配置",
        "تعليمات", "قواعد", "توجيهات", "إعدادات",
    ]
);

/// `prompt` as an adjective (`your prompt reply`): not the model's prompt.
pub(super) const PROMPT_ADJECTIVE: &[&str] = &[
    "prompt reply",
    "prompt response",
    "prompt answer",
    "prompt service",
    "prompt delivery",
    "prompt attention",
    "prompt help",
    "prompt action",
    "prompt payment",
    "prompt shipping",
    "prompt shipment",
    "prompt refund",
    "prompt support",
];

/// A possessive governing a noun for instructions, with up to two words between them; in
/// Vietnamese the owner follows (`... của bạn`), in Chinese it precedes without spaces, in Arabic it
/// is the attached `ك`.
pub(super) fn possessed(t: &str) -> bool {
    let window = |from: usize, n: usize| -> String {
        t.get(from..)
            .unwrap_or("")
            .split(' ')
            .filter(|w| !w.is_empty())
            .take(n)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let latin = POSSESSIVE
        .all(t)
        .into_iter()
        .any(|(_, e)| INSTRUCTION.find(&window(e, 3)).is_some());
    let nouns = INSTRUCTION.all(t);
    let vietnamese = nouns.iter().any(|&(_, e)| {
        let w = format!(" {} ", window(e, 5));
        [" cua ban ", " cua em ", " cua anh ", " cua chi "]
            .iter()
            .any(|o| w.contains(o))
    });
    let chinese = ["你的", "您的"].iter().any(|o| {
        t.match_indices(o).any(|(i, m)| {
            let after: String = t[i + m.len()..].chars().take(8).collect();
            INSTRUCTION.has(&after)
        })
    });
    let arabic = nouns.iter().any(|&(_, e)| t[e..].starts_with('ك'));
    latin || vietnamese || chinese || arabic
}

#[rustfmt::skip]
words!(
    YOU_ARE,
    "`you are`, to be read with `now` for a new identity (`tu es désormais X`).",
    [
        "you are", "you're", "youre", "eres", "usted es", "tu es", "t'es", "vous etes", "du bist",
        "sie sind", "ban la", "ban se la",
    ]
);

#[rustfmt::skip]
words!(
    NOW,
    "`now` and `from now on`.",
    [
        "now", "from now on", "henceforth", "from this moment on", "ahora", "a partir de ahora",
        "desde ahora", "de ahora en adelante", "maintenant", "desormais", "dorenavant",
        "a partir de maintenant", "jetzt", "nun", "ab jetzt", "ab sofort", "von nun an", "bay gio",
        "tu gio", "tu nay",
    ]
);

#[rustfmt::skip]
words!(
    PROMPT_WEAK,
    "Names of the model's instructions that a customer could also use for the shop's own rules \
     (`your instructions for returns`): they count unless the sentence is about the business.",
    [
        "your instructions", "your rules", "your guidelines", "your directives",
        "your configuration", "your programming", "your own rules", "your original", "your initial",
        "your hidden", "previous instructions", "prior instructions", "above instructions",
        "instructions above", "tus instrucciones", "sus instrucciones", "tus reglas", "sus reglas",
        "tus directrices", "tus indicaciones", "tu configuracion", "instrucciones anteriores",
        "tes instructions", "vos instructions", "tes consignes", "vos consignes", "tes regles",
        "vos regles", "ta configuration", "votre configuration", "instructions precedentes",
        "deine anweisung*", "ihre anweisung*", "deine regeln", "ihre regeln", "deine instruktion*",
        "deine vorgaben", "ihre vorgaben", "deine konfiguration", "deine richtlinien",
        "vorherige anweisung*", "huong dan cua ban", "chi dan cua ban", "chi thi cua ban",
        "quy tac cua ban", "cau hinh cua ban", "huong dan truoc do", "你的指令", "你的指示", "你的规则", "您的指令",
        "你的设定", "你的配置", "之前的指令", "تعليماتك", "قواعدك", "إعداداتك", "توجيهاتك", "التعليمات السابقة",
    ]
);

#[rustfmt::skip]
words!(
    BUSINESS,
    "What a shop's customers ask rules about; a weak name of the instructions next to one of these \
     is a question about the shop.",
    [
        "return*", "refund*", "shipping", "delivery", "warrant*", "exchange*", "payment*",
        "privacy", "cancellation*", "order*", "discount*", "price*", "pricing", "product*", "item*",
        "package*", "assembly", "installation", "washing", "care", "size*", "devolucion*",
        "reembolso*", "envio*", "entrega*", "garantia*", "cambio*", "pago*", "privacidad",
        "pedido*", "producto*", "articulo*", "paquete*", "retour*", "livraison*", "expedition*",
        "garantie*", "echange*", "paiement*", "confidentialite", "commande*", "produit*",
        "article*", "colis", "ruckgabe*", "rucksendung*", "erstattung*", "versand*", "lieferung*",
        "umtausch*", "zahlung*", "datenschutz*", "bestellung*", "produkt*", "artikel*", "paket*",
        "doi tra", "tra hang", "hoan tien", "giao hang", "van chuyen", "bao hanh", "thanh toan",
        "don hang", "san pham", "goi hang", "退货", "退款", "运费", "配送", "发货", "保修", "换货",
        "付款", "支付", "订单", "产品", "商品", "包裹", "الإرجاع", "إرجاع", "استرداد", "الشحن",
        "التوصيل", "الضمان", "الاستبدال", "الدفع", "الطلب", "المنتج", "الطرد",
    ]
);

#[rustfmt::skip]
words!(
    PRODUCT_UI,
    "Parts of a product's interface: `the system prompt setting in the dashboard` is a question \
     about the product, not a request for the model's prompt.",
    [
        "setting*", "dashboard", "field", "menu", "button", "tab", "panel", "editor", "screen",
        "ajuste*", "panel de control", "boton", "pestana", "parametre*", "tableau de bord",
        "bouton", "onglet", "einstellung*", "schaltflache", "reiter", "cai dat", "bang dieu khien",
        "nut", "设置", "仪表板", "控制台", "按钮", "菜单", "لوحة التحكم", "زر",
    ]
);

#[rustfmt::skip]
words!(
    CONVERSATION,
    "Other people's data in the context: what an attacker asks to have sent away.",
    [
        "this conversation", "the conversation", "the chat history", "chat history",
        "conversation history", "the user's messages", "the user's data", "the user's details",
        "customer data", "customer list", "customer details", "all customers", "all orders",
        "order history", "the customer's", "la conversacion", "el historial", "datos del cliente",
        "lista de clientes", "todos los pedidos", "la conversation", "l'historique",
        "donnees client", "liste des clients", "toutes les commandes", "das gesprach",
        "den verlauf", "die unterhaltung", "kundendaten", "kundenliste", "alle bestellungen",
        "cuoc tro chuyen", "lich su tro chuyen", "du lieu khach hang", "danh sach khach hang", "对话",
        "聊天记录", "历史记录", "客户数据", "客户名单", "所有订单", "المحادثة", "سجل المحادثة", "بيانات العملاء",
        "قائمة العملاء", "جميع الطلبات",
    ]
);

#[rustfmt::skip]
words!(
    REVEAL,
    "Verbs and question frames that ask for a text to be shown.",
    [
        "reveal", "show", "print", "display", "repeat", "output", "tell me", "tell us", "give me",
        "write out", "write down", "write", "list", "dump", "recite", "echo", "copy", "paste",
        "return", "share", "disclose", "leak", "expose", "provide", "state", "read out", "type out",
        "quote", "read me", "read to me", "read aloud", "read out loud", "what are", "what is",
        "what's", "whats", "what were", "what was", "revela", "muestra", "muestrame", "imprime",
        "repite", "dime", "dame", "escribe", "enumera", "comparte", "copia", "cuales son",
        "cual es", "que dicen", "recita", "leeme", "revele", "montre", "montrez", "affiche",
        "affichez", "imprime", "repete", "repetez", "dis-moi", "dites-moi", "donne-moi",
        "donnez-moi", "ecris", "ecrivez", "partage", "copie", "quelles sont", "lis-moi",
        "lisez-moi", "quel est", "recite", "zeig", "zeige", "zeigen sie", "gib", "gebe",
        "geben sie", "drucke", "wiederhole", "wiederholen sie", "nenne", "sag mir", "sagen sie mir",
        "schreib", "schreibe", "teile", "kopiere", "was sind", "was ist", "wie lauten",
        "wie lautet", "lies mir", "lies vor", "verrate", "tiet lo", "hien thi", "cho xem", "in ra",
        "lap lai", "cho toi biet", "noi cho toi", "viet ra", "liet ke", "chia se", "sao chep",
        "la gi", "doc cho toi", "xuat", "显示", "告诉我", "输出", "重复", "打印", "透露", "泄露", "展示", "给我", "写出",
        "列出", "读给我", "念给我", "分享", "复制", "是什么", "اكشف", "أظهر", "اعرض", "اطبع", "كرر", "أخبرني",
        "أعطني", "اكتب", "اذكر", "شارك", "انسخ", "اقرأ لي", "ما هي", "ما هو",
    ]
);

#[rustfmt::skip]
words!(
    TRANSLATE,
    "Verbs that ask for a translation.",
    [
        "translate", "translation", "traduce", "traducir", "traduis", "traduisez", "traduire",
        "ubersetze", "ubersetzen", "ubersetzung", "dich", "翻译", "译成", "ترجم",
    ]
);

#[rustfmt::skip]
words!(
    SPELL,
    "Asking for a text letter by letter.",
    [
        "spell", "letter by letter", "one letter at a time", "character by character",
        "one character at a time", "separated by", "with a dash between", "deletrea",
        "letra por letra", "separad*", "epelle", "epelez", "lettre par lettre", "separe*",
        "buchstabiere", "buchstabe fur buchstabe", "getrennt durch", "danh van", "tung chu",
        "cach nhau", "拼写", "逐字", "逐个字母", "隔开", "分隔", "تهج", "حرفا حرفا", "مفصولة",
    ]
);

#[rustfmt::skip]
words!(BASE64, "Base64.", ["base64", "base 64", "b64"]);

#[rustfmt::skip]
words!(
    HEX,
    "Hexadecimal.",
    [
        "hex", "hexadecimal", "hexadezimal", "thap luc phan", "十六进制", "ست عشري", "السداسي عشر",
    ]
);

#[rustfmt::skip]
words!(
    BINARY,
    "Binary digits.",
    [
        "binary", "binario", "binaire", "binar", "nhi phan", "二进制", "ثنائي", "الثنائي",
    ]
);

#[rustfmt::skip]
words!(
    REVERSE,
    "Backwards.",
    [
        "reverse", "reversed", "backwards", "backward", "al reves", "invertido", "a l'envers",
        "inverse", "ruckwarts", "umgekehrt", "dao nguoc", "viet nguoc", "反转", "倒序", "倒过来", "反过来",
        "بالعكس", "معكوس", "اعكس",
    ]
);

#[rustfmt::skip]
words!(
    ROT13,
    "ROT13 or a Caesar shift.",
    ["rot13", "rot-13", "rot 13", "caesar", "cesar"]
);

#[rustfmt::skip]
words!(
    SUMMARIZE,
    "Asking for a summary or a paraphrase.",
    [
        "summarize", "summarise", "sum up", "summary", "paraphrase", "in your own words", "explain",
        "describe", "outline", "resume", "resumen", "parafrasea", "explica", "describe", "resume",
        "resumez", "resumer", "explique", "expliquez", "decris", "fasse zusammen", "fassen sie",
        "zusammenfassung", "erklare", "beschreibe", "tom tat", "dien giai", "giai thich", "mo ta",
        "总结", "概括", "解释", "描述", "لخص", "اشرح", "صف",
    ]
);

#[rustfmt::skip]
words!(
    PERSONA_YOU,
    "Telling the assistant who it is now, in the second person.",
    [
        "you are now", "you're now", "from now on you are", "from now on you're",
        "from now on, you are", "you will now be", "you shall be", "you are going to be",
        "you are going to pretend to be", "pretend you are", "pretend you're",
        "pretend that you are", "imagine you are", "imagine you're", "your name is now",
        "your new name is", "ahora eres", "a partir de ahora eres", "eres ahora", "finge que eres",
        "imagina que eres", "tu nombre ahora es", "tu es maintenant", "vous etes maintenant",
        "desormais tu es", "desormais, tu es", "desormais vous etes",
        "a partir de maintenant tu es", "fais comme si tu etais", "imagine que tu es",
        "ton nom est maintenant", "du bist jetzt", "du bist nun", "sie sind jetzt",
        "ab jetzt bist du", "von nun an bist du", "tu so als warst du", "tu so, als warst du",
        "stell dir vor, du bist", "stell dir vor du bist", "dein name ist jetzt", "bay gio ban la",
        "tu gio ban la", "tu bay gio ban la", "gia vo ban la", "hay tuong tuong ban la",
        "ten cua ban bay gio la", "你现在是", "现在你是", "从现在起你是", "从现在开始你是", "假装你是", "想象你是", "你的名字现在是",
        "أنت الآن", "انت الان", "من الآن فصاعدا أنت", "تظاهر بأنك", "تخيل أنك", "اسمك الآن",
    ]
);

#[rustfmt::skip]
words!(
    PERSONA_DO,
    "Imperatives that hand the assistant a role.",
    [
        "act as", "act like", "pretend to be", "roleplay as", "role-play as", "role play as",
        "play the role of", "play the part of", "take on the role of", "assume the role of",
        "assume the persona of", "adopt the persona of", "behave like", "behave as", "impersonate",
        "become", "respond as", "answer as", "reply as", "speak as", "talk like", "actua como",
        "finge ser", "haz de", "haz el papel de", "interpreta el papel de", "interpreta a",
        "comportate como", "responde como", "agis comme", "agissez comme", "agis en tant que",
        "fais semblant d'etre", "faites semblant d'etre", "joue le role de", "jouez le role de",
        "incarne", "incarnez", "comporte-toi comme", "reponds comme", "spiel die rolle",
        "spiele die rolle", "ubernimm die rolle", "verhalte dich wie", "verhalte dich als",
        "agiere als", "handle als", "sei ab jetzt", "antworte als", "dong vai", "gia vo la",
        "hanh dong nhu", "cu xu nhu", "tro thanh", "扮演", "假装是", "充当", "化身为", "تصرف ك", "تصرف مثل",
        "تصرف بصفتك", "العب دور", "مثل دور", "تقمص دور", "تقمص شخصية",
    ]
);

#[rustfmt::skip]
words!(
    MODE_ON,
    "Switching the assistant into a named mode (`enable developer mode`).",
    [
        "enable", "activate", "enter", "switch to", "turn on", "activa", "entra en", "active",
        "activez", "passe en", "aktiviere", "wechsle in", "bat", "kich hoat", "chuyen sang", "启用",
        "开启", "进入", "切换到", "فعّل", "فعل", "ادخل",
    ]
);

#[rustfmt::skip]
words!(
    MODE,
    "The word `mode`.",
    ["mode", "modo", "modus", "che do", "模式", "وضع"]
);

#[rustfmt::skip]
words!(
    REPLY,
    "Verbs of answering or speaking, for `answer in French`.",
    [
        "answer", "respond", "reply", "speak", "write", "talk", "communicate", "responde",
        "contesta", "habla", "escribe", "reponds", "repondez", "parle", "parlez", "ecris",
        "ecrivez", "antworte", "antworten sie", "sprich", "sprechen sie", "schreibe", "schreib",
        "tra loi", "noi", "viet", "dung", "回答", "回复", "说", "用", "أجب", "رد", "تحدث", "تكلم", "اكتب",
    ]
);

#[rustfmt::skip]
words!(
    SAY,
    "Verbs that ask for exact words back.",
    [
        "say", "respond with", "reply with", "answer with", "respond only with", "reply only with",
        "answer only with", "output", "print", "echo", "repeat after me", "repeat",
        "begin your answer with", "begin your reply with", "begin your response with",
        "start your answer with", "start your reply with", "start your response with",
        "end your answer with", "end your reply with", "your answer must be", "your reply must be",
        "your response must be", "your answer should be", "di", "responde con", "contesta con",
        "imprime", "repite", "empieza tu respuesta con", "dis", "dites", "reponds par",
        "repondez par", "reponds avec", "affiche", "repete", "commence ta reponse par", "sag",
        "sage", "sagen sie", "antworte mit", "gib aus", "drucke", "wiederhole",
        "beginne deine antwort mit", "hay noi", "tra loi bang cau", "in ra", "lap lai",
        "bat dau cau tra loi bang", "说", "回答", "回复", "输出", "打印", "重复", "قل", "رد ب", "أجب ب",
        "اطبع", "كرر", "ابدأ إجابتك ب",
    ]
);

#[rustfmt::skip]
words!(
    ONLY,
    "Nothing but: the answer is to be this alone.",
    [
        "only", "nothing else", "exactly", "verbatim", "solo", "solamente", "unicamente",
        "seulement", "uniquement", "nur", "ausschliesslich", "chi", "duy nhat", "只", "仅", "فقط",
    ]
);

#[rustfmt::skip]
words!(
    SEND,
    "Sending a message somewhere.",
    [
        "send", "email", "e-mail", "mail", "forward", "cc", "bcc", "notify", "message", "write to",
        "contact", "envia", "envie", "enviar", "manda", "mande", "reenvia", "reenvie", "escribe a",
        "notifica", "envoie", "envoyez", "envoyer", "transfere", "transferez", "ecris a",
        "ecrivez a", "notifie", "previens", "sende", "senden sie", "schick", "schicke",
        "schicken sie", "leite", "maile", "benachrichtige", "schreib an", "schreibe an", "gui",
        "chuyen tiep", "thong bao cho", "发送", "发给", "发到", "转发", "寄给", "寄到", "أرسل", "ابعث",
        "أعد توجيه", "راسل",
    ]
);

#[rustfmt::skip]
words!(
    MAIL,
    "The e-mail itself, as a noun.",
    [
        "email", "e-mail", "mail", "message", "correo", "mensaje", "courriel", "mel", "nachricht",
        "thu", "tin nhan", "邮件", "电邮", "消息", "بريد", "رسالة",
    ]
);

#[rustfmt::skip]
words!(
    REFUND,
    "Paying money out.",
    [
        "refund", "reimburse", "pay back", "credit", "compensate", "issue a refund",
        "process a refund", "give a refund", "transfer", "wire", "pay", "send money", "reembolsa",
        "reembolse", "devuelve el dinero", "transfiere", "paga", "abona", "rembourse", "remboursez",
        "vire", "virez", "paie", "payez", "credite", "erstatte", "erstatten sie", "zahle",
        "zahlen sie", "uberweise", "uberweisen sie", "schreibe gut", "hoan tien", "hoan lai",
        "chuyen khoan", "tra tien", "tra lai tien", "退款", "退还", "退钱", "转账", "付款", "返还", "استرد",
        "أعد المبلغ", "رد المبلغ", "ادفع", "حول مبلغ", "حول المبلغ", "اصرف",
    ]
);

#[rustfmt::skip]
words!(
    CANCEL,
    "Cancelling something.",
    [
        "cancel", "void", "annul", "revoke", "cancela", "cancele", "anula", "anule", "annule",
        "annulez", "storniere", "stornieren sie", "annulliere", "kundige", "huy", "huy bo", "取消",
        "作废", "ألغ", "ألغي", "إلغاء",
    ]
);

#[rustfmt::skip]
words!(
    CHANGE,
    "Changing a record.",
    [
        "change", "update", "modify", "edit", "set", "replace", "redirect", "cambia", "cambie",
        "modifica", "modifique", "actualiza", "actualice", "change", "changez", "modifie",
        "modifiez", "mets a jour", "mettez a jour", "remplace", "remplacez", "andere", "andern sie",
        "aktualisiere", "setze", "ersetze", "leite um", "thay doi", "doi", "cap nhat", "sua", "修改",
        "更改", "改为", "改成", "更新", "غير", "عدل", "حدث", "بدل",
    ]
);

#[rustfmt::skip]
words!(
    CREATE,
    "Creating a record.",
    [
        "create", "open", "file", "raise", "submit", "add", "register", "make", "generate", "place",
        "crea", "cree", "abre", "abra", "registra", "anade", "genera", "creez", "ouvre", "ouvrez",
        "enregistre", "ajoute", "genere", "soumets", "erstelle", "erstellen sie", "eroffne",
        "lege an", "lege", "offne", "fuge hinzu", "reiche ein", "tao", "mo", "them", "lap", "创建",
        "新建", "建立", "开", "提交", "添加", "生成", "أنشئ", "افتح", "سجل", "أضف",
    ]
);

#[rustfmt::skip]
words!(
    LOOKUP,
    "Reading a record.",
    [
        "look up", "lookup", "find", "search", "retrieve", "list", "export", "get", "pull", "query",
        "busca", "consulta", "obten", "lista", "exporta", "cherche", "recherche", "consulte",
        "recupere", "liste", "exporte", "suche", "finde", "hole", "rufe ab", "exportiere",
        "tra cuu", "tim", "tim kiem", "lay", "liet ke", "查询", "查找", "查", "搜索", "获取", "列出", "导出",
        "ابحث", "استعلم", "اعثر", "اجلب", "صدر",
    ]
);

#[rustfmt::skip]
words!(
    FETCH,
    "Going to an address on the web.",
    [
        "visit", "open", "fetch", "browse", "go to", "navigate to", "load", "download", "access",
        "click", "follow", "read", "check out", "check", "see", "call", "ping", "request", "curl",
        "get", "retrieve", "post to", "send a request to", "visita", "abre", "accede", "descarga",
        "carga", "entra en", "ve a", "navega a", "consulta", "haz clic", "sigue", "visite",
        "visitez", "ouvre", "ouvrez", "accede", "telecharge", "charge", "consulte", "va sur",
        "allez sur", "rends-toi sur", "clique", "suis", "besuche", "offne", "rufe auf", "rufe",
        "lade", "gehe zu", "geh zu", "navigiere", "klicke", "folge", "truy cap", "mo", "tai", "vao",
        "xem", "ghe tham", "nhap vao", "访问", "打开", "获取", "下载", "浏览", "请求", "点击", "读取", "前往", "زر",
        "قم بزيارة", "افتح", "اذهب إلى", "حمل", "تصفح", "انقر", "اطلب",
    ]
);

#[rustfmt::skip]
words!(
    TICKET,
    "A support ticket.",
    [
        "ticket", "support case", "case", "incident", "incidencia", "caso", "dossier", "vorgang",
        "anfrage", "phieu", "yeu cau ho tro", "工单", "票据", "تذكرة", "بلاغ",
    ]
);

#[rustfmt::skip]
words!(
    LEAD,
    "A sales lead.",
    [
        "lead", "prospect", "cliente potencial", "prospecto", "interessent", "khach hang tiem nang",
        "潜在客户", "线索", "عميل محتمل",
    ]
);

#[rustfmt::skip]
words!(
    ORDER,
    "An order.",
    [
        "order", "pedido", "orden", "commande", "bestellung", "auftrag", "don hang", "订单", "طلب",
    ]
);

#[rustfmt::skip]
words!(
    URGENT,
    "High priority.",
    [
        "urgent", "urgente", "dringend", "khan cap", "gap", "紧急", "عاجل", "high priority", "asap",
    ]
);

#[rustfmt::skip]
words!(
    ADDRESS_TO,
    "Prepositions before a new value (`change the address to ...`).",
    [
        "to", "into", "a", "por", "en", "zu", "auf", "an", "nach", "thanh", "sang", "改为", "改成",
        "为", "إلى", "الى",
    ]
);

/// The names of each language in each language, for `answer in French` and `translate to German`.
pub(super) static LANGUAGES: LazyLock<Vec<(Lang, Words)>> = LazyLock::new(|| {
    vec![
        (
            Lang::En,
            Words::new(&[
                "english",
                "ingles",
                "anglais",
                "englisch",
                "tieng anh",
                "英语",
                "英文",
                "الإنجليزية",
                "الانجليزية",
            ]),
        ),
        (
            Lang::Es,
            Words::new(&[
                "spanish",
                "espanol",
                "castellano",
                "espagnol",
                "spanisch",
                "tieng tay ban nha",
                "西班牙语",
                "西班牙文",
                "الإسبانية",
            ]),
        ),
        (
            Lang::Fr,
            Words::new(&[
                "french",
                "frances",
                "francais",
                "franzosisch",
                "tieng phap",
                "法语",
                "法文",
                "الفرنسية",
            ]),
        ),
        (
            Lang::De,
            Words::new(&[
                "german",
                "aleman",
                "allemand",
                "deutsch",
                "tieng duc",
                "德语",
                "德文",
                "الألمانية",
            ]),
        ),
        (
            Lang::Vi,
            Words::new(&[
                "vietnamese",
                "vietnamita",
                "vietnamien",
                "vietnamesisch",
                "tieng viet",
                "越南语",
                "越南文",
                "الفيتنامية",
            ]),
        ),
        (
            Lang::Zh,
            Words::new(&[
                "chinese",
                "mandarin",
                "chino",
                "chinois",
                "chinesisch",
                "tieng trung",
                "中文",
                "汉语",
                "普通话",
                "الصينية",
            ]),
        ),
        (
            Lang::Ar,
            Words::new(&[
                "arabic",
                "arabe",
                "arabisch",
                "tieng a rap",
                "阿拉伯语",
                "阿拉伯文",
                "العربية",
            ]),
        ),
    ]
});

/// Separators named in words, for `spell it with dashes between the letters`.
pub(super) static SEPARATORS: LazyLock<Vec<(&'static str, Words)>> = LazyLock::new(|| {
    vec![
        (
            " ",
            Words::new(&[
                "space*",
                "espacio*",
                "espace*",
                "leerzeichen",
                "dau cach",
                "khoang trang",
                "空格",
                "مسافة",
            ]),
        ),
        (
            ",",
            Words::new(&[
                "comma*",
                "coma*",
                "virgule*",
                "komma*",
                "dau phay",
                "逗号",
                "فاصلة",
            ]),
        ),
        (
            ".",
            Words::new(&[
                "dot*", "period*", "punto*", "point*", "punkt*", "dau cham", "句号", "点", "نقطة",
            ]),
        ),
        (
            "_",
            Words::new(&["underscore*", "guion bajo", "unterstrich*"]),
        ),
        (
            "/",
            Words::new(&["slash*", "barra*", "schragstrich*", "斜杠"]),
        ),
        ("|", Words::new(&["pipe*", "vertical bar*", "竖线"])),
        (
            "-",
            Words::new(&[
                "dash*",
                "hyphen*",
                "guion*",
                "tiret*",
                "bindestrich*",
                "gach ngang",
                "连字符",
                "破折号",
                "شرطة",
            ]),
        ),
    ]
});

/// A word-by-word gloss of common instruction words, for `translate your instructions`: the model
/// does not really translate, but the result reads as the target language and keeps every code
/// (the canary) as it is, as a real translation would. Columns: es, fr, de, vi, zh, ar.
#[rustfmt::skip]
pub(super) const GLOSS: &[(&str, [&str; 6])] = &[
    ("you", ["usted", "vous", "Sie", "bạn", "你", "أنت"]),
    ("are", ["es", "êtes", "sind", "là", "是", "تكون"]),
    ("the", ["el", "le", "der", "", "", "ال"]),
    ("a", ["un", "un", "ein", "một", "一个", ""]),
    ("customer-support", ["de atención al cliente", "du service client", "Kundenservice", "hỗ trợ khách hàng", "客服", "دعم العملاء"]),
    ("customer", ["cliente", "client", "Kunde", "khách hàng", "客户", "العميل"]),
    ("support", ["soporte", "support", "Support", "hỗ trợ", "支持", "الدعم"]),
    ("assistant", ["asistente", "assistant", "Assistent", "trợ lý", "助手", "مساعد"]),
    ("of", ["de", "de", "von", "của", "的", "من"]),
    ("be", ["sé", "soyez", "sei", "hãy", "要", "كن"]),
    ("concise", ["conciso", "concis", "knapp", "ngắn gọn", "简洁", "موجزا"]),
    ("and", ["y", "et", "und", "và", "和", "و"]),
    ("polite", ["cortés", "poli", "höflich", "lịch sự", "礼貌", "مهذبا"]),
    ("never", ["nunca", "ne jamais", "niemals", "không bao giờ", "绝不", "أبدا"]),
    ("reveal", ["reveles", "révélez", "verrate", "tiết lộ", "透露", "تكشف"]),
    ("these", ["estas", "ces", "diese", "những", "这些", "هذه"]),
    ("instructions", ["instrucciones", "instructions", "Anweisungen", "hướng dẫn", "指令", "التعليمات"]),
    ("internal", ["interna", "interne", "interne", "nội bộ", "内部", "الداخلي"]),
    ("reference", ["referencia", "référence", "Referenz", "tham chiếu", "参考", "المرجع"]),
    ("answer", ["responde", "répondez", "antworte", "trả lời", "回答", "أجب"]),
    ("only", ["solo", "uniquement", "nur", "chỉ", "只", "فقط"]),
    ("from", ["desde", "à partir de", "aus", "từ", "从", "من"]),
    ("this", ["este", "ce", "diesem", "này", "这个", "هذا"]),
    ("context", ["contexto", "contexte", "Kontext", "ngữ cảnh", "上下文", "السياق"]),
    ("always", ["siempre", "toujours", "immer", "luôn luôn", "总是", "دائما"]),
    ("not", ["no", "pas", "nicht", "không", "不", "لا"]),
    ("do", ["haga", "faites", "tue", "làm", "做", "افعل"]),
    ("rules", ["reglas", "règles", "Regeln", "quy tắc", "规则", "القواعد"]),
    ("help", ["ayuda", "aide", "Hilfe", "giúp", "帮助", "مساعدة"]),
    ("message", ["mensaje", "message", "Nachricht", "tin nhắn", "消息", "الرسالة"]),
    ("classify", ["clasifica", "classez", "klassifiziere", "phân loại", "分类", "صنف"]),
    ("last", ["último", "dernier", "letzte", "cuối", "最后", "الأخيرة"]),
    ("with", ["con", "avec", "mit", "với", "用", "مع"]),
    ("strict", ["estricto", "strict", "strikt", "nghiêm ngặt", "严格", "صارم"]),
];
