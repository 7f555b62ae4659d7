"""An offline, code-generated 8-topic news-sentence dataset for smoke tests and demos.

Each topic has its own keyword vocabulary; sentences mix keywords into templates made of
shared generic words. Some keywords belong to two topics, some sentences carry a second
topic's keywords (confusers), and a fraction of labels is flipped to a random other class,
so a model learns real signal but cannot reach 100%.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .splits import TextClassificationData

TOPICS: list[str] = ["sports", "business", "science", "politics", "health", "travel", "food", "music"]

_TOPIC_WORDS: dict[str, str] = {
    "sports": """team coach season match league player players goal championship tournament
        stadium striker goalkeeper playoff injury referee captain midfielder quarterback
        pitcher innings tennis football basketball baseball hockey cricket rugby golf olympic
        medal sprint marathon victory defeat halftime overtime roster draft derby penalty
        touchdown umpire athletes scoreboard racket""",
    "business": """shares stock investors profit revenue earnings quarter company firm merger
        acquisition ceo executives shareholders dividend bank loan interest inflation economy
        sales retailer startup venture bonds equity forecast analysts nasdaq exports tariffs
        layoffs wages consumer prices brand deal lender valuation ipo portfolio trading debt
        margin industry""",
    "science": """researchers scientists experiment laboratory telescope galaxy planet asteroid
        particle physics chemistry biology genome molecule protein cells fossil species
        evolution climate ocean satellite spacecraft orbit quantum laser neutron theory
        hypothesis journal microscope specimen mars comet volcano earthquake glacier bacteria
        enzyme atom electron physicist astronomers geologists sensor""",
    "politics": """government minister parliament senate congress election vote voters campaign
        candidate president governor lawmakers bill legislation policy opposition party
        coalition ballot referendum diplomat embassy treaty sanctions cabinet senator mayor
        constitution ruling reform protest debate polls democrats republicans conservative
        liberal administration veto amendment spokesman summit negotiations ministry""",
    "health": """patients doctors hospital clinic disease vaccine virus infection treatment
        therapy symptoms diagnosis cancer diabetes surgery nurses medicine drug dose outbreak
        pandemic immune heart blood obesity fitness sleep anxiety depression pharmacy
        prescription antibiotics epidemic physician chronic illness recovery wellness
        cholesterol allergy asthma transplant pediatric flu screening""",
    "travel": """flight airline airport passengers hotel resort tourists tourism vacation beach
        cruise luggage passport visa destination itinerary booking journey trip travelers
        backpackers island hostel sightseeing landmarks museum guide railway ferry highway map
        suitcase holiday getaway adventure hiking trail mountains coast villa terminal
        departure arrival layover souvenirs lounge""",
    "food": """recipe chef restaurant kitchen menu dish flavor ingredients sauce garlic butter
        cheese bread pasta noodles soup salad dessert chocolate coffee wine beer bakery baking
        grill roasted spicy vegetables fruit tomato chicken beef seafood rice sugar oven cuisine
        diners tasting brunch dinner breakfast snack vegan""",
    "music": """album song songs singer band concert guitar drummer bassist piano orchestra
        symphony lyrics melody chorus rapper jazz rock punk folk blues studio producer festival
        audience vinyl playlist streaming charts grammy debut single remix vocals composer
        opera violin gig setlist encore ballad anthem rehearsal""",
}

# Keywords that honestly belong to two topics; they are added to both vocabularies.
_SHARED_WORDS: list[tuple[str, str, str]] = [
    ("fans", "sports", "music"), ("tour", "travel", "music"), ("record", "sports", "music"),
    ("court", "politics", "sports"), ("market", "business", "food"), ("diet", "health", "food"),
    ("budget", "business", "politics"), ("data", "science", "business"), ("stage", "music", "sports"),
    ("training", "sports", "health"), ("label", "music", "business"), ("trial", "health", "politics"),
    ("study", "science", "health"), ("tax", "politics", "business"), ("farmers", "food", "business"),
    ("space", "science", "travel"), ("nutrition", "health", "food"), ("fuel", "travel", "business"),
    ("energy", "science", "politics"), ("ticket", "travel", "music"), ("score", "sports", "music"),
    ("harvest", "food", "science"), ("votes", "politics", "music"), ("insurance", "health", "business"),
]

# About 150 shared generic words, grouped by the role they play in the templates.
_G = {
    "person": """officials people residents experts critics observers supporters workers students
        families reporters neighbours volunteers organisers locals""".split(),
    "noun": """plan report week month year decision change result problem question news group
        city country region town community project effort event statement meeting process
        future history moment period chance issue story series sign update deadline proposal
        schedule morning evening announcement response reaction outcome detail position
        approach""".split(),
    "verb": """announced said reported expected described welcomed questioned discussed praised
        criticised confirmed revealed planned delayed reviewed considered presented
        changed followed shared explained promised noticed noted suggested mentioned
        ignored""".split(),
    "adj": """new major big small recent local national early late strong weak surprising
        important unusual popular long short busy quiet difficult simple modest familiar
        remarkable sudden steady quick rare ordinary careful cautious clear open crowded""".split(),
    "time": """yesterday today recently earlier later again finally""".split()
    + ["this week", "last month", "on monday", "on friday", "this year", "last season", "over the weekend"],
}

# Main clauses: {t} is a keyword of the sentence's topic, the rest are generic slots.
_MAIN = [
    "{person} {verb} the {adj} {t} {time}",
    "the {t} and the {t} {verb} a {adj} {noun} {time}",
    "{time} the {t} {verb} the {noun} after the {t} was {adj}",
    "a {adj} {t} {verb} the {noun} in the {noun}",
    "{person} say the {t} is more {adj} than the {t} was",
    "for many {person} the {t} was the {adj} part of the {noun}",
    "the {adj} {t} drew {person} who {verb} the {t}",
    "nobody {verb} that the {t} would be so {adj} {time}",
    "the {noun} about the {t} {verb} {person} and {person}",
    "after the {t} the {t} and the {t} {verb} a {adj} {noun}",
    "the {t} was {verb} as {adj} by {person} {time}",
    "{person} {verb} a {adj} {noun} on the {t}",
]
# Side clauses with one keyword {c}: of the sentence's own topic, or of another (a confuser).
_SIDE = [
    "while the {c} {verb} {time}",
    "even as the {c} was {adj}",
    "and {person} {verb} the {c} too",
    "just like the {c} and the {c}",
    "next to a {adj} {c}",
]
# Generic fillers that only add length.
_FILLER = [
    "according to {person}", "{time}", "for the first time in years", "as part of a {adj} {noun}",
    "although the details remain unclear", "and {person} {verb} the {noun}", "in a {adj} {noun}",
    "which surprised {person}", "despite a {adj} {noun}", "said {person} close to the {noun}",
    "before the end of the {noun}", "with little warning",
]

MIN_WORDS, MAX_WORDS = 8, 30
SUPPORT_RATE = 0.5  # share of sentences with a side clause of their own topic


def _vocabularies() -> list[list[str]]:
    vocab = {t: _TOPIC_WORDS[t].split() for t in TOPICS}
    for word, a, b in _SHARED_WORDS:
        vocab[a].append(word)
        vocab[b].append(word)
    return [vocab[t] for t in TOPICS]


class _Generator:
    """Turns a numpy Generator into sentences; all randomness comes from `rng`."""

    def __init__(self, rng: np.random.Generator, confuser_rate: float) -> None:
        self.rng = rng
        self.vocab = _vocabularies()
        self.confuser_rate = confuser_rate
        self.support_rate = SUPPORT_RATE

    def pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def fill(self, template: str, topic_words: list[str] | None = None, key: str = "t") -> str:
        out = []
        for part in template.split():
            if part.startswith("{") and part.endswith("}"):
                slot = part[1:-1]
                out.append(self.pick(topic_words) if slot == key else self.pick(_G[slot]))
            else:
                out.append(part)
        return " ".join(out)

    def sentence(self, label: int) -> str:
        main = self.fill(self.pick(_MAIN), self.vocab[label])
        clauses = [main]
        # Side clauses share one set of templates, so only their keywords tell them apart.
        if self.rng.random() < self.support_rate:
            clauses.append(self.fill(self.pick(_SIDE), self.vocab[label], key="c"))
        if self.rng.random() < self.confuser_rate:
            other = int(self.rng.integers(len(TOPICS) - 1))
            other += other >= label
            side = self.fill(self.pick(_SIDE), self.vocab[other], key="c")
            clauses.insert(int(self.rng.integers(1, len(clauses) + 1)), side)
        target = int(self.rng.integers(MIN_WORDS, MAX_WORDS + 1))
        n_words = sum(len(c.split()) for c in clauses)
        fillers: list[str] = []
        unused = list(_FILLER)
        while n_words < target and unused:
            f = self.fill(unused.pop(int(self.rng.integers(len(unused)))))
            if n_words + len(f.split()) > MAX_WORDS:
                if n_words >= MIN_WORDS:
                    break
                continue
            fillers.append(f)
            n_words += len(f.split())
        # Fillers go before or after the topic clauses, so position carries no signal.
        for f in fillers:
            if self.rng.random() < 0.3 and f.split()[0] not in ("and", "which", "said"):
                clauses.insert(0, f)
            else:
                clauses.append(f)
        words = " ".join(clauses).split()
        for i in range(len(words) - 1):
            if words[i] == "a" and words[i + 1][0] in "aeiou":
                words[i] = "an"
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."


def _make_split(n: int, rng: np.random.Generator, noise_rng: np.random.Generator,
                label_noise: float, confuser_rate: float) -> tuple[list[str], np.ndarray]:
    k = len(TOPICS)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % k)
    gen = _Generator(rng, confuser_rate)
    texts = [gen.sentence(int(y)) for y in labels]
    n_flip = int(round(label_noise * n))
    if n_flip:
        idx = noise_rng.choice(n, size=n_flip, replace=False)
        shift = noise_rng.integers(1, k, size=n_flip)
        labels = labels.copy()
        labels[idx] = (labels[idx] + shift) % k
    return texts, labels


def demo_dataset(
    num_train: int = 4000,
    num_test: int = 1000,
    seed: int = 0,
    label_noise: float = 0.1,
    confuser_rate: float = 0.3,
) -> TextClassificationData:
    """The 'demo' dataset: 8 balanced topic classes of English-like news sentences (8-30 words).

    Deterministic for a seed (numpy default_rng only). Exactly round(label_noise * n)
    labels per split are moved to a random other class; the texts do not depend on
    `label_noise`, and the test split does not depend on `num_train`.
    """
    if num_train < 1 or num_test < 1:
        raise UserError(f"demo dataset sizes must be positive, got {num_train} train / {num_test} test",
                        "pass positive sizes")
    if not 0.0 <= label_noise < 1.0:
        raise UserError(f"label noise must lie in [0, 1), got {label_noise}", "pass e.g. 0.1")
    if not 0.0 <= confuser_rate <= 1.0:
        raise UserError(f"confuser rate must lie in [0, 1], got {confuser_rate}", "pass e.g. 0.3")
    train_seq, test_seq, train_noise, test_noise = np.random.SeedSequence([seed, 8]).spawn(4)
    train_texts, train_labels = _make_split(num_train, np.random.default_rng(train_seq),
                                            np.random.default_rng(train_noise), label_noise, confuser_rate)
    test_texts, test_labels = _make_split(num_test, np.random.default_rng(test_seq),
                                          np.random.default_rng(test_noise), label_noise, confuser_rate)
    return TextClassificationData.create(
        name="demo",
        train_texts=train_texts,
        train_labels=train_labels,
        test_texts=test_texts,
        test_labels=test_labels,
        label_names=list(TOPICS),
    )
