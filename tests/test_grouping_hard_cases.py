"""Story grouping on hand-written hard cases, with the real embedding model.

Hard negatives: two events of one kind (two quakes, one team's two games, one vendor's two
patches, one person's two arrests, a show's casting news and a look back at it, a company's
stock move and its product launch) and a quiet day of unrelated posts on one subject must stay
apart; rewordings, headline-only rewrites and a spun copy with page junk must still join. All
texts are invented for these tests.
"""

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.evaluate import bcubed
from aggregator.grouping import GroupingParams, group
from aggregator.grouping.scripts import script_centres, scripts_of
from aggregator.grouping.text import embedding_text
from aggregator.models import Item

pytestmark = pytest.mark.model

DAY = datetime(2024, 5, 14, 8, tzinfo=UTC)


def labels_of(embed, rows) -> list[int]:
    """rows: (title, summary, outlet, published). Grouped as `cluster` groups them: with the
    centres of any writing system the model reads poorly, measured with the same model."""
    items = [
        Item(id=i, title=t, summary=s, outlet=o, link=None, published=when)
        for i, (t, s, o, when) in enumerate(rows)
    ]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    centres = script_centres(embed, scripts_of(items))
    return group(items, vectors, GroupingParams(), centres=centres).tolist()


TWO_QUAKES = [
    (
        "Magnitude 5.1 earthquake rattles Perth",
        "A magnitude 5.1 earthquake shook Perth on Tuesday morning, cracking walls in "
        "older homes in the city's eastern suburbs. Western Australia's emergency "
        "service said no one was hurt.",
        "Coastline Times",
        DAY,
    ),
    (
        "Perth shaken by rare 5.1 quake",
        "Residents of Perth were woken by a rare magnitude 5.1 tremor on Tuesday. "
        "Geoscience Australia said the quake was centred 40 km east of the city; "
        "minor damage was reported.",
        "Daily Ledger",
        DAY + timedelta(hours=2),
    ),
    (
        "Strong 6.8 quake strikes off northern Chile",
        "A strong magnitude 6.8 earthquake struck off the coast of northern Chile near "
        "Antofagasta on Tuesday, swaying buildings and prompting a brief tsunami alert "
        "that was later lifted.",
        "Wire Service",
        DAY + timedelta(hours=3),
    ),
    (
        "Chile: 6.8 earthquake hits near Antofagasta",
        "Chile's disaster agency said a magnitude 6.8 earthquake hit near Antofagasta "
        "on Tuesday. Power was cut in parts of the region and a tsunami alert was "
        "briefly issued.",
        "Andes Post",
        DAY + timedelta(hours=4),
    ),
]


CASTING_AND_LOOK_BACK = [
    (
        "Harbour Lights adds Mara Quinn to cast of final season",
        "Mara Quinn has joined the cast of Harbour Lights for its fifth and final season, "
        "the network said on Tuesday. Quinn will play a ferry captain; filming starts in "
        "Belfast in June.",
        "Screen Daily",
        DAY,
    ),
    (
        "Mara Quinn cast in last season of Harbour Lights",
        "The network confirmed Tuesday that Mara Quinn will join Harbour Lights as a ferry "
        "captain in the drama's fifth and final season, shooting in Belfast from June.",
        "TV Insider",
        DAY + timedelta(hours=3),
    ),
    (
        "Ten years of Harbour Lights: how a small drama found its audience",
        "When Harbour Lights first aired a decade ago, few expected the quiet coastal "
        "drama to last. Looking back at its first four seasons, its writers and cast "
        "explain what kept viewers coming back.",
        "Culture Weekly",
        DAY + timedelta(hours=5),
    ),
    (
        "Looking back at Harbour Lights before its final season",
        "As Harbour Lights heads into its last season, we revisit the moments that made "
        "the coastal drama a hit, from the storm episode to the finale of season three.",
        "Arts Review",
        DAY + timedelta(hours=7),
    ),
]


STOCK_MOVE_AND_LAUNCH = [
    (
        "Veltra shares slide 6% as analysts cut targets",
        "Shares of Veltra fell 6 percent on Tuesday after two brokerages cut their price "
        "targets, citing slowing demand for its chips in data centres.",
        "Market Wire",
        DAY,
    ),
    (
        "Veltra stock falls after analyst downgrades",
        "Veltra's stock dropped 6% in Tuesday trading as analysts at two banks lowered "
        "their price targets on concerns over data-centre demand.",
        "Investor Daily",
        DAY + timedelta(hours=2),
    ),
    (
        "Veltra unveils V9 chip for laptops",
        "Veltra on Tuesday launched the V9, a chip for thin laptops that it says doubles "
        "battery life, with the first machines due in the autumn.",
        "Tech Today",
        DAY + timedelta(hours=4),
    ),
    (
        "Veltra's new V9 laptop chip promises longer battery life",
        "The V9, announced by Veltra on Tuesday, targets thin-and-light laptops; the "
        "company claims twice the battery life of its predecessor, shipping this autumn.",
        "Gadget Post",
        DAY + timedelta(hours=5),
    ),
]


@pytest.mark.parametrize(
    "rows",
    [TWO_QUAKES, CASTING_AND_LOOK_BACK, STOCK_MOVE_AND_LAUNCH],
    ids=[
        "two quakes in different places",
        "a show's casting news and a look back at it",
        "a company's stock move and its product launch",
    ],
)
def test_two_stories_of_one_kind_on_one_day_stay_apart_and_each_joins(embed, rows):
    """Rows 0-1 report one story, rows 2-3 another of the same kind, subject or company."""
    labels = labels_of(embed, rows)
    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_one_teams_two_games_stay_apart(embed):
    labels = labels_of(
        embed,
        [
            (
                "Rovers beat Albion 3-1 to go top",
                "Harbour Rovers beat Albion 3-1 at the Quayside Ground on Saturday, with two "
                "goals from Mendes, to go top of the league table.",
                "Sport Daily",
                DAY,
            ),
            (
                "Rovers held 0-0 by Castleford",
                "Harbour Rovers were held to a goalless draw by Castleford on Saturday, a week "
                "after going top, as Mendes missed a late penalty at the Quayside Ground.",
                "Sport Daily",
                DAY + timedelta(days=7),
            ),
        ],
    )
    assert labels[0] != labels[1]


def test_one_vendors_two_patches_years_apart_stay_apart(embed):
    labels = labels_of(
        embed,
        [
            (
                "Brightwave issues emergency browser update for zero-day flaw",
                "Brightwave released an emergency update for its Nimbus browser on Wednesday to "
                "fix a zero-day vulnerability, CVE-2019-7712, that attackers were exploiting.",
                "Tech Wire",
                datetime(2019, 3, 6, tzinfo=UTC),
            ),
            (
                "Brightwave patches actively exploited Nimbus browser zero-day",
                "Brightwave pushed an emergency fix for its Nimbus browser on Wednesday after "
                "attackers exploited a zero-day flaw tracked as CVE-2024-3310.",
                "Tech Wire",
                datetime(2024, 5, 15, tzinfo=UTC),
            ),
        ],
    )
    assert labels[0] != labels[1]


def test_one_persons_two_arrests_years_apart_stay_apart(embed):
    labels = labels_of(
        embed,
        [
            (
                "Singer Rae Dunmore arrested for drink-driving in Leeds",
                "Pop singer Rae Dunmore was arrested on suspicion of drink-driving in Leeds "
                "early on Sunday, police said. She was released on bail.",
                "Showbiz Today",
                datetime(2016, 8, 7, tzinfo=UTC),
            ),
            (
                "Rae Dunmore arrested after scuffle at Glasgow airport",
                "Singer Rae Dunmore was arrested at Glasgow airport on Friday after a scuffle "
                "with security staff, police said. She was later released.",
                "Showbiz Today",
                datetime(2023, 2, 10, tzinfo=UTC),
            ),
        ],
    )
    assert labels[0] != labels[1]


def test_reports_of_one_arrest_that_disagree_on_the_age_join(embed):
    """An age describes a person, not the event: reports give 60 and 61 for one suspect."""
    labels = labels_of(
        embed,
        [
            (
                "Woman charged in cold-case killings at Millbrook bakery",
                "Millbrook police on Friday arrested a 60-year-old woman in the killings of "
                "two young bakers, ending a search of more than three decades.",
                "Valley Courier",
                DAY,
            ),
            (
                "Arrest made in Millbrook bakery murders decades later",
                "A 61-year-old former co-worker, Dana Holloway, has been charged with two counts "
                "of murder in the slayings at a Millbrook bakery, police said.",
                "State Wire",
                DAY + timedelta(hours=3),
            ),
            (
                "Former co-worker held in Millbrook cold case",
                "Dana Holloway, aged 60, was arrested on Friday over the killing of two "
                "women at the Millbrook bakery where she once worked, police said.",
                "Evening Herald",
                DAY + timedelta(hours=5),
            ),
        ],
    )
    assert labels[0] == labels[1] == labels[2]


def test_a_quiet_day_of_blog_posts_on_two_subjects_stays_apart(embed):
    posts = [
        (
            "Six months with a folding phone",
            "I have carried a folding phone since winter. The hinge still feels solid, the "
            "crease bothers me less than expected, and battery life is the real weakness.",
        ),
        (
            "Why I went back to a small phone",
            "After years of big screens I bought a compact phone. One-handed use is a joy; "
            "the camera is a step down and I miss the larger battery.",
        ),
        (
            "Review: a budget phone that gets the basics right",
            "For under 200 dollars this phone has a bright screen, two days of battery and "
            "clean software. Its camera struggles at night.",
        ),
        (
            "Understanding Rust lifetimes with one example",
            "Lifetimes confuse every newcomer to Rust. Here I walk through a function that "
            "returns a reference and show what the borrow checker is protecting you from.",
        ),
        (
            "Notes on writing a tiny Python parser",
            "I wrote a recursive-descent parser for arithmetic in Python over a weekend. "
            "Tokenising was easy; precedence and error messages took the most time.",
        ),
        (
            "How I structure Go projects in 2024",
            "My Go repositories keep a flat layout: one package per concern, a cmd folder "
            "for binaries and tests next to the code. Here is why.",
        ),
    ]
    rows = [
        (title, summary, f"blog{i}.example", DAY + timedelta(hours=i))
        for i, (title, summary) in enumerate(posts)
    ]
    assert len(set(labels_of(embed, rows))) == len(posts)


def test_one_blogs_link_posts_on_one_subject_years_apart_stay_apart(embed):
    """Headlines alone, one blog, a few subjects over four years: posts on one subject read alike
    (so HDBSCAN finds them as dense fragments), but years apart they are no one story. Unrelated
    headlines around them give the day its density."""
    subjects = [
        ("City Hall Releases Stadium Emails", 0),
        ("City Hall Plays Down Parking Plan", 460),
        ("City Hall Used Former Mayor to Ask Rival to Quit Race", 197),
        ("Mayor and Council Talk Budget at City Hall", 550),
        ("Councillor Hart's Harbour Comments Stir Up Furious Reaction", 580),
        ("Councillor Hart's End Could Be Near", -260),
        ("Pixel update fixes battery drain", -337),
        ("Pixel update brings new camera modes", 899),
    ]
    others = [
        "Storm knocks out power to thousands in the valley",
        "Local bakery wins national bread prize",
        "River festival returns after two-year break",
        "School board approves later start times",
        "Rail strike called off after late-night talks",
        "Museum unveils restored medieval tapestry",
        "Heatwave warning issued for the weekend",
        "Startup raises funds for electric ferries",
        "Zoo welcomes twin snow leopard cubs",
        "Hospital opens new cancer treatment wing",
        "Police appeal for witnesses after bridge crash",
        "Farmers warn of poor harvest after dry spring",
        "University cuts language courses",
        "New cycle lanes divide shop owners",
    ]
    rows = [(t, "", "Link Blog", DAY + timedelta(days=d)) for t, d in subjects]
    rows += [(t, "", "Link Blog", DAY + timedelta(days=37 * k)) for k, t in enumerate(others)]
    labels = labels_of(embed, rows)
    assert len(set(labels[: len(subjects)])) == len(subjects)


def test_rewordings_of_one_story_join_and_headline_only_rewrites_join(embed):
    labels = labels_of(
        embed,
        [
            ("Mayor Okafor unveils flood plan for Riverside", "", "City News", DAY),
            (
                "Riverside to get new flood defences, says Mayor Okafor",
                "",
                "Evening Star",
                DAY + timedelta(hours=1),
            ),
            (
                "Okafor's Riverside flood defence plan unveiled",
                "",
                "Local Radio",
                DAY + timedelta(hours=3),
            ),
            ("Ferry strike cancels island sailings", "", "City News", DAY),
        ],
    )
    assert labels[0] == labels[1] == labels[2] != labels[3]


SMALL_DAY = [
    ("Central bank holds interest rates at 4.25 percent", "The Federal Reserve held its "
     "benchmark interest rate at 4.25 percent on Wednesday, saying inflation remained above its "
     "2 percent target while job growth slowed.", "Wire", 0.0),
    ("Central bank holds interest rates at 4.25 percent", "The Federal Reserve held its "
     "benchmark interest rate at 4.25 percent on Wednesday, saying inflation remained above its "
     "2 percent target while job growth slowed.", "JSON Times", 0.5),
    ("Riverside Mayor Grace Okafor wins second term by 16 points", "Riverside Mayor Grace Okafor "
     "won re-election on Saturday with 58 percent of the vote, defeating council member Tom "
     "Reyes after a campaign dominated by housing costs.", "Wire", 1.0),
    ("Local bakery wins national sourdough prize", "A family bakery in Millbrook took the "
     "national sourdough award for its rye loaf.", "Wire", 1.0),
    ("Riverside Mayor Okafor wins second term", "Riverside Mayor Grace Okafor won re-election on "
     "Saturday with 58 percent of the vote, defeating council member Tom Reyes after a campaign "
     "dominated by housing costs.", "JSON Times", 1.5),
    ("Riverside Mayor Okafor wins second term", "Riverside Mayor Grace Okafor won re-election on "
     "Saturday with 58 percent of the vote, defeating council member Tom Reyes after a campaign "
     "dominated by housing costs. Reporting by the Atom Herald.", "Atom Herald", 2.0),
    ("Magnitude 6.8 earthquake strikes near Antofagasta, Chile", "A magnitude 6.8 earthquake "
     "struck off northern Chile near Antofagasta on Sunday, the US Geological Survey said. No "
     "tsunami warning was issued; officials reported minor damage in the port city.", "Wire", 2.0),
    ("Magnitude 6.8 earthquake strikes near Antofagasta, Chile", "A magnitude 6.8 earthquake "
     "struck off northern Chile near Antofagasta on Sunday, the US Geological Survey said. No "
     "tsunami warning was issued; officials reported minor damage in the port city.",
     "JSON Times", 2.5),
    ("Magnitude 6.8 earthquake hits Antofagasta, Chile", "A magnitude 6. Reporting by the Atom "
     "Herald.", "Atom Herald", 3.0),
    ("Fed leaves rates unchanged at 4.25%", "The Federal Reserve kept its key rate at 4.25 "
     "percent on Wednesday as inflation stays above target.", "Moved", 3.0),
    ("Storm Darragh closes schools across Wales", "Storm Darragh closed hundreds of schools "
     "across Wales on Friday as winds reached 90 mph.", "Wire", 4.0),
]  # fmt: skip


def test_an_unrelated_item_never_rides_into_a_tight_group_on_a_small_day(embed):
    """On a day of a few items HDBSCAN kept the bakery prize in the fragment of the three
    election reports (it fell out last as the cluster shrank), and the fragment's average let
    it through: the story page said "0.13 similar". Every member must be near another."""
    rows = [(t, s, o, DAY + timedelta(hours=h)) for t, s, o, h in SMALL_DAY]
    labels = labels_of(embed, rows)
    bakery = labels[3]
    assert labels.count(bakery) == 1
    assert labels[2] == labels[4] == labels[5]  # the election, three reports
    assert labels[6] == labels[7] == labels[8]  # the quake
    assert labels[0] == labels[1] == labels[9]  # the rates decision, reworded by one outlet


# A day of news in a writing system the default (English) model reads poorly: Arabic letter by
# letter, Chinese as unknown tokens. (headline, summary, story)
ARABIC_DAY = [
    (
        "ارتفاع أسعار النفط بعد قرار أوبك خفض الإنتاج",
        "ارتفعت أسعار النفط الخام اليوم بعد أن قررت منظمة أوبك خفض إنتاجها اليومي.",
        "a1",
    ),
    (
        "أسعار الخام تصعد إثر تخفيض أوبك للإمدادات",
        "صعدت أسعار الخام في الأسواق العالمية بعد إعلان أوبك تقليص الإمدادات.",
        "a1",
    ),
    (
        "الهلال يفوز على النصر في الدوري السعودي",
        "فاز فريق الهلال على النصر بهدفين مقابل هدف في مباراة الدوري السعودي.",
        "a2",
    ),
    (
        "الهلال يتغلب على النصر ويعزز صدارته",
        "تغلب الهلال على غريمه النصر بنتيجة ٢-١ ليعزز صدارة الدوري.",
        "a2",
    ),
    (
        "افتتاح معرض الكتاب الدولي في القاهرة",
        "افتتح وزير الثقافة معرض القاهرة الدولي للكتاب بمشاركة مئات الناشرين.",
        "a3",
    ),
    (
        "أمطار غزيرة تغرق شوارع الإسكندرية",
        "غمرت الأمطار الغزيرة عدة شوارع في مدينة الإسكندرية وتعطلت حركة المرور.",
        "a4",
    ),
    (
        "البنك المركزي المغربي يبقي سعر الفائدة دون تغيير",
        "قرر بنك المغرب الإبقاء على سعر الفائدة الرئيسي عند مستواه الحالي.",
        "a5",
    ),
    (
        "إطلاق قمر صناعي إماراتي جديد لرصد المناخ",
        "أطلقت الإمارات قمرا صناعيا جديدا لمراقبة التغيرات المناخية.",
        "a6",
    ),
    (
        "وزارة الصحة الأردنية تطلق حملة تطعيم ضد الحصبة",
        "بدأت وزارة الصحة في الأردن حملة وطنية لتطعيم الأطفال ضد الحصبة.",
        "a7",
    ),
    (
        "ارتفاع معدل التضخم في تونس خلال الشهر الماضي",
        "أظهرت بيانات رسمية ارتفاع معدل التضخم في تونس إلى مستوى جديد.",
        "a8",
    ),
    (
        "افتتاح خط مترو جديد في الرياض",
        "بدأ تشغيل خط جديد من مترو الرياض يربط شمال المدينة بوسطها.",
        "a9",
    ),
    (
        "مهرجان للتمور في المدينة المنورة يجذب الزوار",
        "يستقطب مهرجان التمور في المدينة المنورة آلاف الزوار والتجار.",
        "a10",
    ),
    (
        "العثور على موقع أثري جديد قرب الأقصر",
        "أعلنت وزارة الآثار المصرية اكتشاف موقع أثري يعود إلى العصر الفرعوني قرب الأقصر.",
        "a11",
    ),
    (
        "الكويت تعلن عن ميزانية العام المقبل",
        "أعلنت الحكومة الكويتية مشروع ميزانية العام المالي المقبل بعجز متوقع.",
        "a12",
    ),
    (
        "انقطاع الكهرباء عن أحياء في بيروت",
        "شهدت أحياء عدة في بيروت انقطاعا طويلا للتيار الكهربائي.",
        "a13",
    ),
    (
        "فوز روائي سوداني بجائزة أدبية عربية",
        "فاز روائي من السودان بجائزة أدبية عربية مرموقة عن روايته الأخيرة.",
        "a14",
    ),
    (
        "حريق في مصنع للبلاستيك بمدينة الدمام",
        "اندلع حريق كبير في مصنع للبلاستيك في الدمام دون وقوع إصابات.",
        "a15",
    ),
    (
        "قطر تستضيف بطولة آسيوية للتنس",
        "تستضيف الدوحة بطولة آسيوية للتنس بمشاركة لاعبين من عشرين دولة.",
        "a16",
    ),
]
CHINESE_DAY = [
    (
        "四川发生4.3级地震 暂无人员伤亡报告",
        "中国地震台网测定四川某县发生4.3级地震，目前暂无人员伤亡报告。",
        "z1",
    ),
    (
        "四川某县4.3级地震 当地启动应急响应",
        "四川发生4.3级地震后，当地启动三级应急响应，暂未收到伤亡报告。",
        "z1",
    ),
    ("国产大飞机完成首次商业航班", "国产大型客机今天完成首次商业载客飞行，从上海飞往北京。", "z2"),
    (
        "国产客机首次商业载客飞行成功",
        "我国自主研制的大型客机首次执行商业航班，平稳降落北京。",
        "z2",
    ),
    ("春运铁路预计发送旅客创新高", "铁路部门预计今年春运期间发送旅客人数将创历史新高。", "z3"),
    ("全国人大审议新的数据安全法草案", "全国人大常委会今日开始审议数据安全法修订草案。", "z4"),
    (
        "婴幼儿奶粉抽检结果公布 全部合格",
        "市场监管总局公布婴幼儿配方奶粉抽检结果，所有样品均合格。",
        "z5",
    ),
    ("女排主教练宣布辞职", "中国女排主教练今天宣布辞去职务，排协表示将尽快选定继任者。", "z6"),
    ("流感疫苗接种工作全面启动", "多地疾控中心宣布今年秋季流感疫苗接种工作全面启动。", "z7"),
    ("新型驱逐舰正式入列", "海军一艘新型驱逐舰今天在某军港举行入列仪式。", "z8"),
    ("北京下周将迎来大范围降温", "气象台预报下周北京将迎来明显降温，最低气温降至零下。", "z9"),
    ("深圳发布新能源汽车补贴新政", "深圳市发布新能源汽车购置补贴新政策，最高补贴一万元。", "z10"),
    ("故宫博物院推出新展览", "故宫博物院推出明代书画特展，展出文物一百余件。", "z11"),
    ("长江流域启动禁渔期执法行动", "农业农村部在长江流域开展禁渔期专项执法行动。", "z12"),
    ("上海股市收盘小幅上涨", "上证指数今日收盘小幅上涨，科技股表现活跃。", "z13"),
    ("杭州亚运场馆向公众开放", "杭州亚运会部分场馆今日起向市民免费开放。", "z14"),
    ("西藏一条新公路建成通车", "西藏一条连接两县的新公路今天正式建成通车。", "z15"),
    ("高考报名人数再创新高", "教育部公布今年高考报名人数，再次创下历史新高。", "z16"),
]


@pytest.mark.parametrize("day", [ARABIC_DAY, CHINESE_DAY], ids=["arabic", "chinese"])
def test_a_day_of_arabic_or_chinese_news_stays_apart_and_its_reports_join(embed, day):
    """With the English model, any two Arabic headlines came out ~0.7 alike: 18 items of 16
    stories became one story (Chinese: three; B-cubed precision 0.07 and 0.18). Each item's
    vector less what the day's items of its writing system share, the stories stay apart
    (one wrong pair at most) and the reports of one join."""
    rows = [
        (title, summary, f"Outlet {k % 5}", DAY + timedelta(minutes=k))
        for k, (title, summary, _) in enumerate(day)
    ]
    labels = labels_of(embed, rows)
    stories = [story for _, _, story in day]
    precision, recall, _ = bcubed(labels, stories)
    # measured: Arabic 0.93 / 0.94, Chinese 1.00 / 1.00 (before: 0.07 and 0.18 precision)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, labels)


@pytest.mark.parametrize("day", [ARABIC_DAY, CHINESE_DAY], ids=["arabic", "chinese"])
def test_a_few_arabic_or_chinese_items_stay_apart_and_a_pair_joins(embed, day):
    """Six items (two pairs, two alone): too few for their own mean to tell what all texts of
    their writing system share, so they were grouped on the raw vectors (Arabic: all six one
    story, precision 0.28; Chinese 0.78). The reference texts' centre serves any window."""
    rows = [
        (title, summary, f"Outlet {k % 5}", DAY + timedelta(minutes=k))
        for k, (title, summary, _) in enumerate(day[:6])
    ]
    labels = labels_of(embed, rows)
    precision, recall, _ = bcubed(labels, [story for _, _, story in day[:6]])
    assert precision == 1.0 and recall >= 0.8, (precision, recall, labels)


# The default model reads Thai as unknown tokens only: a text without spaces, digits or Latin
# letters is one vector, whatever it says.
THAI_DAY = [
    ("ไฟไหม้โรงงานพลาสติกที่สมุทรปราการ", "เกิดเหตุไฟไหม้โรงงานพลาสติกในจังหวัดสมุทรปราการ", "t1"),
    ("เพลิงไหม้โรงงานพลาสติกย่านสมุทรปราการ", "ไฟไหม้โรงงานพลาสติกในสมุทรปราการ ไม่มีผู้บาดเจ็บ", "t1"),
    ("ธนาคารกลางคงอัตราดอกเบี้ยนโยบาย", "คณะกรรมการนโยบายการเงินมีมติคงอัตราดอกเบี้ย", "t2"),
    ("นักวิ่งไทยคว้าเหรียญทองมาราธอน", "นักวิ่งไทยชนะการแข่งขันมาราธอนระดับภูมิภาค", "t3"),
    ("กรมอุตุฯ เตือนฝนตกหนักภาคเหนือ", "ประชาชนในภาคเหนือควรระวังน้ำป่าไหลหลาก", "t4"),
    ("เปิดสะพานข้ามแม่น้ำโขงแห่งใหม่", "สะพานใหม่เชื่อมสองฝั่งแม่น้ำโขงเปิดใช้วันนี้", "t5"),
]


def test_thai_news_the_model_reads_as_one_vector_is_told_apart_by_its_characters(embed):
    """Thai texts embed to one vector (unknown tokens), so less what all Thai texts share
    nothing was left and the six were one story; their character n-grams stand in."""
    items_text = [embedding_text(title, summary) for title, summary, _ in THAI_DAY]
    vectors = embed(items_text)
    # what the model gives them: one vector for all without a space, near it for the others
    assert float((vectors @ vectors.T).min()) > 0.9
    assert sum(float(vectors[0] @ v) > 0.999 for v in vectors) >= 4
    rows = [
        (title, summary, f"Outlet {k}", DAY + timedelta(minutes=k))
        for k, (title, summary, _) in enumerate(THAI_DAY)
    ]
    labels = labels_of(embed, rows)
    precision, recall, _ = bcubed(labels, [story for _, _, story in THAI_DAY])
    assert precision == 1.0 and recall == 1.0, (precision, recall, labels)


# An automated feed: every title one template, the events told apart only by its slots.
QUAKE_FEED = [
    ("M 3.1 - 8 km NW of Brawley, CA", "Time 2024-05-14 08:02 UTC. Depth 9.2 km."),
    ("M 2.4 - 3 km S of Brawley, CA", "Time 2024-05-14 09:40 UTC. Depth 6.0 km."),
    ("M 4.2 - 14 km E of Brawley, CA", "Time 2024-05-14 11:15 UTC. Depth 11.8 km."),
    ("M 1.9 - 6 km N of Hilo, Hawaii", "Time 2024-05-14 12:30 UTC. Depth 31.0 km."),
    ("M 3.6 - 22 km SW of Hilo, Hawaii", "Time 2024-05-14 14:05 UTC. Depth 28.4 km."),
    ("M 2.7 - 10 km ENE of Anza, CA", "Time 2024-05-14 15:20 UTC. Depth 12.1 km."),
]
# a league's two days: each team plays five times, the same words in every title
TEAMS = ("Harbour", "Millwall", "Kingsmead", "Eastfield", "Northgate", "Ashby")
RESULTS_FEED = [
    (
        f"{home} {k % 5}-{k * 3 % 4} {away}",
        f"Full time at {home} Park: {home} {k % 5}, {away} {k * 3 % 4}.",
    )
    for k, (home, away) in enumerate((h, a) for h in TEAMS for a in TEAMS if h < a)
]


@pytest.mark.parametrize("as_stored", [False, True], ids=["as-written", "headlines-only"])
def test_an_automated_feeds_items_stay_apart_and_a_report_joins_its_item(embed, as_stored):
    """A quake feed's titles share all their words but magnitude, distance and place, and a
    results feed's all but teams and score: the model found them 0.8-0.9 alike and the three
    Brawley quakes, and Harbour's three games, were one story each. Items of one outlet's
    title template with other slots (most of its items fill it) are other events; a news
    outlet's report of one of the quakes still joins it. As stored, the parser has cut the
    summaries (all template) and the items are headlines only: one team's games
    differ in one name and the score (0.68 before)."""
    rows = [
        (title, "" if as_stored else summary, "Quake Alerts", DAY + timedelta(hours=k))
        for k, (title, summary) in enumerate(QUAKE_FEED)
    ]
    rows += [
        (
            title,
            "" if as_stored else summary,
            "League Results",
            DAY + timedelta(hours=5 * k, minutes=30),
        )
        for k, (title, summary) in enumerate(RESULTS_FEED)
    ]
    rows.append(
        (
            "Magnitude 4.2 earthquake shakes Brawley",
            "A magnitude 4.2 earthquake struck 14 km east of Brawley, California, on Tuesday "
            "morning, shaking homes across the Imperial Valley; no damage was reported.",
            "Valley Gazette",
            DAY + timedelta(hours=3),
        )
    )
    stories = [f"q{k}" for k in range(len(QUAKE_FEED))] + [
        f"r{k}" for k in range(len(RESULTS_FEED))
    ]
    stories.append("q2")  # the Gazette's report of the 4.2 quake
    labels = labels_of(embed, rows)
    precision, recall, _ = bcubed(labels, stories)
    assert precision == 1.0 and recall == 1.0, (precision, recall, labels)
