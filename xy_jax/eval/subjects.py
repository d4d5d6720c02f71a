"""Subject tables of the four benchmarks (C-Eval, CMMLU, MMLU, FinanceIQ): data only.

This module only holds data: for each benchmark, the subject file keys exactly
as they appear in the published on-disk layout, in the benchmark's own order,
with display names and the category each subject is scored under.

Sources (read from the published repositories / the lm-eval 0.4.13 wheel):

* C-Eval   -- hkust-nlp/ceval, subject_mapping.json (commit b677c7b0);
              cross-checked against lm-eval 0.4.13
              lm_eval/tasks/ceval/_generate_configs.py and ceval-valid_*.yaml.
* CMMLU    -- haonan-li/CMMLU, src/categories.py (commit 7aa0f6f4):
              name_en2zh, subcategories, categories; cross-checked against
              lm-eval 0.4.13 lm_eval/tasks/cmmlu/_generate_configs.py and
              cmmlu_*.yaml (Chinese names identical for all 67 subjects).
* MMLU     -- hendrycks/test categories.py (subcategories -> categories);
              the file itself is not in the local index, its content was read
              from verbatim copies and cross-checked against lm-eval 0.4.13
              lm_eval/tasks/mmlu/_generate_configs.py (same 57 keys).
* FinanceIQ -- Duxiaoman-DI/XuanYuan, FinanceIQ/src/categories.py,
              FinanceIQ/data/{dev,test}/*.csv and FinanceIQ/README.md
              (commit ab141638 / README 12354b42).

On-disk layouts:

* C-Eval:    {dev,val,test}/{key}_{dev,val,test}.csv  (lm-eval scores "val")
* CMMLU:     {dev,test}/{key}.csv, header ",Question,A,B,C,D,Answer"
* MMLU:      {dev,val,test}/{key}_{dev,val,test}.csv, no header row
* FinanceIQ: {dev,test}/{name}.csv, header ",Question,A,B,C,D,Answer"
             (one CSV per exam, 10 files; the 36 "subcategories" mentioned
             in the README are not exposed in the data)
"""

# ---------------------------------------------------------------------------
# C-Eval
# ---------------------------------------------------------------------------

# Source: hkust-nlp/ceval subject_mapping.json (commit b677c7b0ff9a...).
# Order = file order. key -> (English name, Chinese name, category).
# Note: another stored version of that file (commit 907b6287...) lacks the
# category for clinical_medicine; the version used here (and lm-eval /
# OpenCompass) has "Other".
CEVAL_SUBJECTS = {
  "computer_network": ("Computer Network", "计算机网络", "STEM"),
  "operating_system": ("Operating System", "操作系统", "STEM"),
  "computer_architecture": ("Computer Architecture", "计算机组成", "STEM"),
  "college_programming": ("College Programming", "大学编程", "STEM"),
  "college_physics": ("College Physics", "大学物理", "STEM"),
  "college_chemistry": ("College Chemistry", "大学化学", "STEM"),
  "advanced_mathematics": ("Advanced Mathematics", "高等数学", "STEM"),
  "probability_and_statistics": ("Probability and Statistics", "概率统计", "STEM"),
  "discrete_mathematics": ("Discrete Mathematics", "离散数学", "STEM"),
  "electrical_engineer": ("Electrical Engineer", "注册电气工程师", "STEM"),
  "metrology_engineer": ("Metrology Engineer", "注册计量师", "STEM"),
  "high_school_mathematics": ("High School Mathematics", "高中数学", "STEM"),
  "high_school_physics": ("High School Physics", "高中物理", "STEM"),
  "high_school_chemistry": ("High School Chemistry", "高中化学", "STEM"),
  "high_school_biology": ("High School Biology", "高中生物", "STEM"),
  "middle_school_mathematics": ("Middle School Mathematics", "初中数学", "STEM"),
  "middle_school_biology": ("Middle School Biology", "初中生物", "STEM"),
  "middle_school_physics": ("Middle School Physics", "初中物理", "STEM"),
  "middle_school_chemistry": ("Middle School Chemistry", "初中化学", "STEM"),
  "veterinary_medicine": ("Veterinary Medicine", "兽医学", "STEM"),
  "college_economics": ("College Economics", "大学经济学", "Social Science"),
  "business_administration": ("Business Administration", "工商管理", "Social Science"),
  "marxism": ("Marxism", "马克思主义基本原理", "Social Science"),
  "mao_zedong_thought": ("Mao Zedong Thought", "毛泽东思想和中国特色社会主义理论体系概论", "Social Science"),
  "education_science": ("Education Science", "教育学", "Social Science"),
  "teacher_qualification": ("Teacher Qualification", "教师资格", "Social Science"),
  "high_school_politics": ("High School Politics", "高中政治", "Social Science"),
  "high_school_geography": ("High School Geography", "高中地理", "Social Science"),
  "middle_school_politics": ("Middle School Politics", "初中政治", "Social Science"),
  "middle_school_geography": ("Middle School Geography", "初中地理", "Social Science"),
  "modern_chinese_history": ("Modern Chinese History", "近代史纲要", "Humanities"),
  "ideological_and_moral_cultivation": ("Ideological and Moral Cultivation", "思想道德修养与法律基础", "Humanities"),
  "logic": ("Logic", "逻辑学", "Humanities"),
  "law": ("Law", "法学", "Humanities"),
  "chinese_language_and_literature": ("Chinese Language and Literature", "中国语言文学", "Humanities"),
  "art_studies": ("Art Studies", "艺术学", "Humanities"),
  "professional_tour_guide": ("Professional Tour Guide", "导游资格", "Humanities"),
  "legal_professional": ("Legal Professional", "法律职业资格", "Humanities"),
  "high_school_chinese": ("High School Chinese", "高中语文", "Humanities"),
  "high_school_history": ("High School History", "高中历史", "Humanities"),
  "middle_school_history": ("Middle School History", "初中历史", "Humanities"),
  "civil_servant": ("Civil Servant", "公务员", "Other"),
  "sports_science": ("Sports Science", "体育学", "Other"),
  "plant_protection": ("Plant Protection", "植物保护", "Other"),
  "basic_medicine": ("Basic Medicine", "基础医学", "Other"),
  "clinical_medicine": ("Clinical Medicine", "临床医学", "Other"),
  "urban_and_rural_planner": ("Urban and Rural Planner", "注册城乡规划师", "Other"),
  "accountant": ("Accountant", "注册会计师", "Other"),
  "fire_engineer": ("Fire Engineer", "注册消防工程师", "Other"),
  "environmental_impact_assessment_engineer": ("Environmental Impact Assessment Engineer", "环境影响评价工程师", "Other"),
  "tax_accountant": ("Tax Accountant", "税务师", "Other"),
  "physician": ("Physician", "医师资格", "Other"),
}

CEVAL_CATEGORIES = ("STEM", "Social Science", "Humanities", "Other")


# ---------------------------------------------------------------------------
# CMMLU
# ---------------------------------------------------------------------------

# Source: haonan-li/CMMLU src/categories.py (commit 7aa0f6f4...): name_en2zh
# gives keys and Chinese names (order = name_en2zh order; note computer_science
# sits after high_school_chemistry there). key -> (Chinese name, category).
# The Chinese names are identical to lm-eval 0.4.13 cmmlu SUBJECTS.
# CMMLU's own code lets a subject count toward two categories (e.g.
# ancient_chinese is 'linguistics' -> Social Science AND 'china specific');
# the single label here is "China specific" when 'china specific' is among the
# subject's subcategories, else the category of its first subcategory. This
# matches the per-subject table in the CMMLU paper (e.g. Ancient Chinese ->
# China specific, Agronomy -> Other, Anatomy -> STEM). For CMMLU-style
# multi-membership category scores use CMMLU_SUBCATEGORIES below.
CMMLU_SUBJECTS = {
  "agronomy": ("农学", "Other"),
  "anatomy": ("解剖学", "STEM"),
  "ancient_chinese": ("古汉语", "China specific"),
  "arts": ("艺术学", "Humanities"),
  "astronomy": ("天文学", "STEM"),
  "business_ethics": ("商业伦理", "Social Science"),
  "chinese_civil_service_exam": ("中国公务员考试", "China specific"),
  "chinese_driving_rule": ("中国驾驶规则", "China specific"),
  "chinese_food_culture": ("中国饮食文化", "China specific"),
  "chinese_foreign_policy": ("中国外交政策", "China specific"),
  "chinese_history": ("中国历史", "China specific"),
  "chinese_literature": ("中国文学", "China specific"),
  "chinese_teacher_qualification": ("中国教师资格", "China specific"),
  "clinical_knowledge": ("临床知识", "Other"),
  "college_actuarial_science": ("大学精算学", "STEM"),
  "college_education": ("大学教育学", "Social Science"),
  "college_engineering_hydrology": ("大学工程水文学", "STEM"),
  "college_law": ("大学法律", "Humanities"),
  "college_mathematics": ("大学数学", "STEM"),
  "college_medical_statistics": ("大学医学统计", "STEM"),
  "college_medicine": ("大学医学", "Other"),
  "computer_security": ("计算机安全", "Other"),
  "conceptual_physics": ("概念物理学", "STEM"),
  "construction_project_management": ("建设工程管理", "China specific"),
  "economics": ("经济学", "Social Science"),
  "education": ("教育学", "Social Science"),
  "electrical_engineering": ("电气工程", "STEM"),
  "elementary_chinese": ("小学语文", "China specific"),
  "elementary_commonsense": ("小学常识", "China specific"),
  "elementary_information_and_technology": ("小学信息技术", "Other"),
  "elementary_mathematics": ("初等数学", "STEM"),
  "ethnology": ("民族学", "China specific"),
  "food_science": ("食品科学", "Other"),
  "genetics": ("遗传学", "STEM"),
  "global_facts": ("全球事实", "Humanities"),
  "high_school_biology": ("高中生物", "STEM"),
  "high_school_chemistry": ("高中化学", "STEM"),
  "computer_science": ("计算机科学", "STEM"),
  "high_school_geography": ("高中地理", "Social Science"),
  "high_school_mathematics": ("高中数学", "STEM"),
  "high_school_physics": ("高中物理学", "STEM"),
  "high_school_politics": ("高中政治", "China specific"),
  "human_sexuality": ("人类性行为", "Other"),
  "international_law": ("国际法学", "Humanities"),
  "journalism": ("新闻学", "Social Science"),
  "jurisprudence": ("法理学", "Humanities"),
  "legal_and_moral_basis": ("法律与道德基础", "Other"),
  "logical": ("逻辑学", "Humanities"),
  "machine_learning": ("机器学习", "STEM"),
  "management": ("管理学", "Social Science"),
  "marketing": ("市场营销", "Social Science"),
  "marxist_theory": ("马克思主义理论", "Humanities"),
  "modern_chinese": ("现代汉语", "China specific"),
  "nutrition": ("营养学", "Other"),
  "philosophy": ("哲学", "Humanities"),
  "professional_accounting": ("专业会计", "Social Science"),
  "professional_law": ("专业法学", "Humanities"),
  "professional_medicine": ("专业医学", "Other"),
  "professional_psychology": ("专业心理学", "Social Science"),
  "public_relations": ("公共关系", "Social Science"),
  "security_study": ("安全研究", "Social Science"),
  "sociology": ("社会学", "Social Science"),
  "sports_science": ("体育学", "Other"),
  "traditional_chinese_medicine": ("中医中药", "China specific"),
  "virology": ("病毒学", "STEM"),
  "world_history": ("世界历史", "Humanities"),
  "world_religions": ("世界宗教", "Humanities"),
}

# Source: haonan-li/CMMLU src/categories.py `subcategories` (verbatim data).
CMMLU_SUBCATEGORIES = {
  "agronomy": ("other",),
  "anatomy": ("biology",),
  "ancient_chinese": ("linguistics", "china specific"),
  "arts": ("arts",),
  "astronomy": ("physics",),
  "business_ethics": ("business",),
  "chinese_civil_service_exam": ("politics", "china specific"),
  "chinese_driving_rule": ("other", "china specific"),
  "chinese_food_culture": ("culture", "china specific"),
  "chinese_foreign_policy": ("politics", "china specific"),
  "chinese_history": ("history", "china specific"),
  "chinese_literature": ("literature", "china specific"),
  "chinese_teacher_qualification": ("education", "china specific"),
  "college_actuarial_science": ("math",),
  "college_education": ("education",),
  "college_engineering_hydrology": ("engineering",),
  "college_law": ("law",),
  "college_mathematics": ("math",),
  "college_medical_statistics": ("statistics",),
  "clinical_knowledge": ("other",),
  "college_medicine": ("other",),
  "computer_security": ("other",),
  "conceptual_physics": ("physics",),
  "construction_project_management": ("other", "china specific"),
  "economics": ("economics",),
  "education": ("education",),
  "elementary_chinese": ("linguistics", "china specific"),
  "elementary_commonsense": ("other", "china specific"),
  "elementary_information_and_technology": ("other",),
  "electrical_engineering": ("engineering",),
  "elementary_mathematics": ("math",),
  "ethnology": ("culture", "china specific"),
  "food_science": ("other",),
  "genetics": ("biology",),
  "global_facts": ("global",),
  "high_school_biology": ("biology",),
  "high_school_chemistry": ("chemistry",),
  "computer_science": ("computer science",),
  "high_school_geography": ("geography",),
  "high_school_mathematics": ("math",),
  "high_school_physics": ("physics",),
  "high_school_politics": ("politics", "china specific"),
  "human_sexuality": ("other",),
  "international_law": ("law",),
  "journalism": ("sociology",),
  "jurisprudence": ("law",),
  "legal_and_moral_basis": ("other",),
  "logical": ("philosophy",),
  "machine_learning": ("computer science",),
  "management": ("business",),
  "marketing": ("business",),
  "marxist_theory": ("philosophy",),
  "modern_chinese": ("linguistics", "china specific"),
  "nutrition": ("other",),
  "philosophy": ("philosophy",),
  "professional_accounting": ("business",),
  "professional_law": ("law",),
  "professional_medicine": ("other",),
  "professional_psychology": ("psychology",),
  "public_relations": ("politics",),
  "security_study": ("politics",),
  "sociology": ("culture",),
  "sports_science": ("other",),
  "traditional_chinese_medicine": ("other", "china specific"),
  "virology": ("biology",),
  "world_history": ("history",),
  "world_religions": ("global",),
}

# Source: haonan-li/CMMLU src/categories.py `categories` (verbatim data).
CMMLU_CATEGORY_GROUPS = {
  "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering", "statistics"),
  "Humanities": ("history", "philosophy", "law", "arts", "literature", "global"),
  "Social Science": ("linguistics", "business", "politics", "culture", "economics", "geography", "psychology", "education", "sociology"),
  "Other": ("other",),
  "China specific": ("china specific",),
}

CMMLU_CATEGORIES = tuple(CMMLU_CATEGORY_GROUPS)


# ---------------------------------------------------------------------------
# MMLU
# ---------------------------------------------------------------------------

# Source: hendrycks/test categories.py: each subject has exactly one
# subcategory; category = the categories entry containing it. Order =
# alphabetical (the file's and lm-eval's order). key -> category.
# lm-eval 0.4.13 (mmlu/_generate_configs.py) uses its own grouping
# stem/humanities/social_sciences/other which agrees with this table except
# for "anatomy" (hendrycks: health -> "other (business, health, misc.)";
# lm-eval: "stem"). See MMLU_LM_EVAL_GROUP_OVERRIDES.
MMLU_SUBJECTS = {
  "abstract_algebra": "STEM",
  "anatomy": "other (business, health, misc.)",
  "astronomy": "STEM",
  "business_ethics": "other (business, health, misc.)",
  "clinical_knowledge": "other (business, health, misc.)",
  "college_biology": "STEM",
  "college_chemistry": "STEM",
  "college_computer_science": "STEM",
  "college_mathematics": "STEM",
  "college_medicine": "other (business, health, misc.)",
  "college_physics": "STEM",
  "computer_security": "STEM",
  "conceptual_physics": "STEM",
  "econometrics": "social sciences",
  "electrical_engineering": "STEM",
  "elementary_mathematics": "STEM",
  "formal_logic": "humanities",
  "global_facts": "other (business, health, misc.)",
  "high_school_biology": "STEM",
  "high_school_chemistry": "STEM",
  "high_school_computer_science": "STEM",
  "high_school_european_history": "humanities",
  "high_school_geography": "social sciences",
  "high_school_government_and_politics": "social sciences",
  "high_school_macroeconomics": "social sciences",
  "high_school_mathematics": "STEM",
  "high_school_microeconomics": "social sciences",
  "high_school_physics": "STEM",
  "high_school_psychology": "social sciences",
  "high_school_statistics": "STEM",
  "high_school_us_history": "humanities",
  "high_school_world_history": "humanities",
  "human_aging": "other (business, health, misc.)",
  "human_sexuality": "social sciences",
  "international_law": "humanities",
  "jurisprudence": "humanities",
  "logical_fallacies": "humanities",
  "machine_learning": "STEM",
  "management": "other (business, health, misc.)",
  "marketing": "other (business, health, misc.)",
  "medical_genetics": "other (business, health, misc.)",
  "miscellaneous": "other (business, health, misc.)",
  "moral_disputes": "humanities",
  "moral_scenarios": "humanities",
  "nutrition": "other (business, health, misc.)",
  "philosophy": "humanities",
  "prehistory": "humanities",
  "professional_accounting": "other (business, health, misc.)",
  "professional_law": "humanities",
  "professional_medicine": "other (business, health, misc.)",
  "professional_psychology": "social sciences",
  "public_relations": "social sciences",
  "security_studies": "social sciences",
  "sociology": "social sciences",
  "us_foreign_policy": "social sciences",
  "virology": "other (business, health, misc.)",
  "world_religions": "humanities",
}

# Source: hendrycks/test categories.py `subcategories` (one per subject).
MMLU_SUBCATEGORIES = {
  "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics",
  "business_ethics": "business", "clinical_knowledge": "health",
  "college_biology": "biology", "college_chemistry": "chemistry",
  "college_computer_science": "computer science",
  "college_mathematics": "math", "college_medicine": "health",
  "college_physics": "physics", "computer_security": "computer science",
  "conceptual_physics": "physics", "econometrics": "economics",
  "electrical_engineering": "engineering", "elementary_mathematics": "math",
  "formal_logic": "philosophy", "global_facts": "other",
  "high_school_biology": "biology", "high_school_chemistry": "chemistry",
  "high_school_computer_science": "computer science",
  "high_school_european_history": "history",
  "high_school_geography": "geography",
  "high_school_government_and_politics": "politics",
  "high_school_macroeconomics": "economics",
  "high_school_mathematics": "math",
  "high_school_microeconomics": "economics",
  "high_school_physics": "physics", "high_school_psychology": "psychology",
  "high_school_statistics": "math", "high_school_us_history": "history",
  "high_school_world_history": "history", "human_aging": "health",
  "human_sexuality": "culture", "international_law": "law",
  "jurisprudence": "law", "logical_fallacies": "philosophy",
  "machine_learning": "computer science", "management": "business",
  "marketing": "business", "medical_genetics": "health",
  "miscellaneous": "other", "moral_disputes": "philosophy",
  "moral_scenarios": "philosophy", "nutrition": "health",
  "philosophy": "philosophy", "prehistory": "history",
  "professional_accounting": "other", "professional_law": "law",
  "professional_medicine": "health", "professional_psychology": "psychology",
  "public_relations": "politics", "security_studies": "politics",
  "sociology": "culture", "us_foreign_policy": "politics",
  "virology": "health", "world_religions": "philosophy",
}

# Source: hendrycks/test categories.py `categories`.
MMLU_CATEGORY_GROUPS = {
  "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
  "humanities": ("history", "philosophy", "law"),
  "social sciences": ("politics", "culture", "economics", "geography", "psychology"),
  "other (business, health, misc.)": ("other", "business", "health"),
}

MMLU_CATEGORIES = tuple(MMLU_CATEGORY_GROUPS)

# lm-eval 0.4.13 group names differ in spelling (stem, humanities,
# social_sciences, other) and place anatomy under stem.
MMLU_LM_EVAL_GROUP_OVERRIDES = {"anatomy": "stem"}


# ---------------------------------------------------------------------------
# FinanceIQ
# ---------------------------------------------------------------------------

# Source: Duxiaoman-DI/XuanYuan FinanceIQ/src/categories.py `subjects` (order)
# and FinanceIQ/data/dev/*.csv, FinanceIQ/data/test/*.csv (identical 10 names
# in both folders). Names use FULL-WIDTH parentheses in 注册会计师（CPA） and an
# ASCII hyphen in 精算师-金融数学; 保险从业资格CICE has no parentheses.
# The README calls each file one of the 10 金融大类 ("financial major
# categories"); there is no higher grouping. name -> (English gloss,
# category), where category is the column label the README result tables use.
# English glosses are ours (the repo gives none).
FINANCEIQ_SUBJECTS = {
  "注册会计师（CPA）": ("Certified Public Accountant (CPA)", "注册会计师"),
  "银行从业资格": ("Banking Professional Qualification", "银行从业资格"),
  "证券从业资格": ("Securities Professional Qualification", "证券从业资格"),
  "基金从业资格": ("Fund Professional Qualification", "基金从业资格"),
  "保险从业资格CICE": ("Insurance Professional Qualification (CICE)", "保险从业资格"),
  "经济师": ("Economist", "经济师"),
  "税务师": ("Certified Tax Agent", "税务师"),
  "期货从业资格": ("Futures Professional Qualification", "期货从业资格"),
  "理财规划师": ("Financial Planner", "理财规划师"),
  "精算师-金融数学": ("Actuary - Financial Mathematics", "精算师"),
}
