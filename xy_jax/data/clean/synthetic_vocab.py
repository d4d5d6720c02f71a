"""Vocabularies of the synthetic corpus (synthetic.py): 600 frequent Chinese words (from jieba's
dictionary, by frequency) and the function characters between them, and a few hundred English words."""

ZH_WORDS = tuple(dict.fromkeys("""
没有 国家 发展 工作 问题 进行 地方 已经 全国 经济 公司 人民 社会 知道 起来 地区 开始 技术 重要 成为 研究 文化 企业 历史 世界 不能 时间 生产 情况 代表 决定 关系 领导
生活 时候 可能 出来 学生 一般 认为 不同 学院 作为 会议 部分 活动 需要 管理 方面 市场 组织 工业 建设 形成 出现 一定 具有 政治 人们 委员会 发现 记者 国际 规定 机关 法律
影响 包括 发生 使用 中心 教育 要求 政府 人口 建立 参加 产品 面积 提出 作用 必须 行政 编辑 职业 制度 说道 世纪 应该 主席 系统 有关 组成 民族 基本 增长 自然 大学 人员
计划 不会 产生 时期 表示 机构 大家 特别 改革 能力 革命 一直 基础 还有 得到 进入 运动 过程 方法 举行 群众 单位 孩子 资源 条件 学校 提高 工程 环境 提供 方式 报告 军事
部门 分别 完成 最大 农业 专业 准备 增加 获得 旅游 觉得 理论 非常 中央 比较 表现 价值 科技 完全 存在 达到 内容 实行 思想 事情 实现 甚至 任务 选举 形式 原来 突然 不断
变化 直接 战争 不知 政策 资本 继续 位于 权力 执行 先生 解决 建筑 能够 自治区 称为 结构 成立 统一 先进 结果 投资 水平 保护 负责 制定 艺术 利用 学习 合作 科学 看到 项目
不敢 服务 精神 全省 当然 个人 超过 重点 原因 公民 希望 新闻 设计 相关 分布 最高 部队 集团 信息 采用 重大 回来 范围 引起 实际 其实 取得 丰富 农民 为主 了解 价格 地位
劳动 控制 目标 基地 农村 传统 受到 全部 比赛 军队 土地 规模 眼睛 选择 批准 专家 分析 统治 加强 不到 铁路 告诉 支持 交通 处理 时代 实施 成功 办法 进一步 终于 大量 人物
共同 严重 接受 收入 声音 意见 保持 坚持 工人 汽车 商品 说话 改变 力量 事业 开发 看见 战略 标准 是否 出去 报道 程度 平均 消息 安全 独立 注意 机会 父亲 经验 采取 喜欢
根本 领域 具体 联系 几乎 干部 大会 不可 兄弟 阶段 感到 无法 宪法 似乎 原则 真正 法规 斗争 人类 目的 造成 反对 儿子 相同 著名 众人 建议 迅速 全面 正是 明显 就是 作品
首先 集中 正式 朋友 召开 材料 帮助 飞机 委员 行动 保证 现象 特点 实际上 资料 同志 行为 结束 直辖市 介绍 只见 胜利 认识 人数 积极 家庭 更加 回答 武器 应用 市长 来到 设立
产业 公路 人才 意义 容易 长期 大道 扩大 官员 调整 考虑 联合 自由 仍然 拥有 民主 专门 结合 清楚 说明 稳定 物质 电话 网络 利益 很大 不少 中学 开放 调查 人家 重新 广泛
分为 知识 综合 出口 动物 速度 总理 用于 设备 女人 股东 作出 展开 措施 通常 电子 方向 导弹 小时 平民 行业 特色 货币 完善 地理 功能 巨大 发表 性质 母亲 质量 命令 和平
监督 身体 位置 体系 越来越 逐渐 指出 安排 权利 训练 考试 指挥 却是 指导 发布 感觉 努力 机场 业务 植物 同样 状态 银行 书记 治疗 反应 语言 忽然 找到 宣布 恢复 离开 困难
事件 实在 见到 装备 问道 检察院 经营 广场 解释 因素 队伍 教授 医院 男人 双方 减少 考生 经常 生物 海军 真是 心想 财产 全市 有效 尤其 一边 用户 方案 进攻 机械 参与 充分
从事 特殊 又称 手段 生命 便是 体育 居民 生长 立即 简单 数量 开展 文学 进来 决议 显示 属于 也许 气候 来自 相信 确定 投入 普通 看着 文章 心理 女儿 封建 图片 创造 总统
促进 带来 教师 竟然 较大 看来 反映 食品 坐在 相当 变成 资金 放在 夫人 相对 大陆 职权 不再 导致 对方 应当 讨论 金融 证明 制造 构成 老师 担任 区域 院长 计算机 错误 曾经
保障 创作 强调 连续 运输 看看 主张 商业 高速 真的 只能 贸易 不得 体制 例如 财政 肯定 成绩 音乐 建成 回去 难道 正确 现代化 处于 大臣 高度 复杂 社区 身子 回到 媒体 地面
分子 意思 销售 弟子 重视 压力

银行 利率 股票 债券 基金 央行 监管 风险 收益 融资 信贷 通胀 消费 出口 汇率 期货 保险 证券 季度 业绩
利润 营收 资产 负债 流动性 估值 上涨 下跌 同比 环比 推动 完善 贷款 存款 理财 并购 上市 股东 分红 净值""".split()))

ZH_PARTICLES = tuple("的 了 在 是 和 也 对 将 与 及 等 中 有 为".split())

EN_WORDS = tuple("""
the of and to in a is that for on with as was by it from at be this have are which an or not
has its but were their they had been one more also new will would year after first two there
other than some about into most over only such these between up could may market markets bank banks
interest rate rates company companies shares stock stocks bond bonds fund funds economy economic growth
policy policies central regulator regulators risk risks return returns capital firm firms credit
inflation consumer consumers export exports currency futures insurance quarter quarterly earnings profit
profits revenue revenues asset assets liability liabilities liquidity valuation rose fell stable reform
data showed analyst analysts expected annual increase increased lower higher support boost strengthen
investor investors price prices trade trading trader demand supply sector sectors index percent billion
million government minister ministry report reported statement official officials said says according
month months week weeks day days last next early late during while since before because however although
yield yields debt deficit spending budget tax taxes loan loans lending deposit deposits dollar dollars
euro yuan exchange exchanges equity equities commodity commodities oil gold energy property housing
manufacturing services industrial output production employment unemployment wage wages labour income
household households business businesses investment investments merger acquisition deal deals board
chief executive officer director shareholders dividend dividends forecast forecasts outlook estimate
estimates survey level levels record high low strong weak slow slowing rapid recovery recession crisis
pressure pressures concern concerns decision decisions meeting meetings plan plans measure measures
""".split())

