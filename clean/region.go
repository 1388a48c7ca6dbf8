package clean

import (
	"sort"
	"strings"
	"unicode"
)

// Division is a Chinese provincial-level division (省级行政区).
type Division struct {
	Code    string   // GB/T 2260 two-digit code, the first digits of an ID number
	Name    string   // canonical full Chinese name, e.g. 北京市, 广西壮族自治区
	Short   string   // name without its administrative suffix, e.g. 北京, 广西
	Pinyin  string   // toneless pinyin of Short, e.g. beijing
	English string   // usual English name, e.g. Beijing, Inner Mongolia
	Aliases []string // other spellings people write
}

// Provinces lists all 34 provincial-level divisions: 23 provinces (台湾 is
// included as GB/T 2260 lists it), 5 autonomous regions, 4 municipalities
// and 2 special administrative regions.
var Provinces = []Division{
	{"11", "北京市", "北京", "beijing", "Beijing", []string{"peking", "京"}},
	{"12", "天津市", "天津", "tianjin", "Tianjin", []string{"tientsin", "津"}},
	{"13", "河北省", "河北", "hebei", "Hebei", []string{"冀"}},
	{"14", "山西省", "山西", "shanxi", "Shanxi", []string{"晋"}},
	{"15", "内蒙古自治区", "内蒙古", "neimenggu", "Inner Mongolia", []string{"nei mongol", "neimongol", "内蒙"}},
	{"21", "辽宁省", "辽宁", "liaoning", "Liaoning", []string{"辽"}},
	{"22", "吉林省", "吉林", "jilin", "Jilin", nil},
	{"23", "黑龙江省", "黑龙江", "heilongjiang", "Heilongjiang", []string{"黑"}},
	{"31", "上海市", "上海", "shanghai", "Shanghai", []string{"沪"}},
	{"32", "江苏省", "江苏", "jiangsu", "Jiangsu", []string{"苏"}},
	{"33", "浙江省", "浙江", "zhejiang", "Zhejiang", []string{"浙"}},
	{"34", "安徽省", "安徽", "anhui", "Anhui", []string{"皖"}},
	{"35", "福建省", "福建", "fujian", "Fujian", []string{"闽"}},
	{"36", "江西省", "江西", "jiangxi", "Jiangxi", []string{"赣"}},
	{"37", "山东省", "山东", "shandong", "Shandong", []string{"鲁"}},
	{"41", "河南省", "河南", "henan", "Henan", []string{"豫"}},
	{"42", "湖北省", "湖北", "hubei", "Hubei", []string{"鄂"}},
	{"43", "湖南省", "湖南", "hunan", "Hunan", []string{"湘"}},
	{"44", "广东省", "广东", "guangdong", "Guangdong", []string{"canton province", "粤"}},
	{"45", "广西壮族自治区", "广西", "guangxi", "Guangxi", []string{"广西自治区", "guangxi zhuang", "桂"}},
	{"46", "海南省", "海南", "hainan", "Hainan", []string{"琼"}},
	{"50", "重庆市", "重庆", "chongqing", "Chongqing", []string{"chungking", "渝"}},
	{"51", "四川省", "四川", "sichuan", "Sichuan", []string{"szechuan", "szechwan", "川", "蜀"}},
	{"52", "贵州省", "贵州", "guizhou", "Guizhou", []string{"黔", "贵"}},
	{"53", "云南省", "云南", "yunnan", "Yunnan", []string{"滇", "云"}},
	{"54", "西藏自治区", "西藏", "xizang", "Tibet", []string{"xizang zizhiqu", "藏"}},
	// 陕西 is romanised Shaanxi by convention precisely because its toneless
	// pinyin collides with 山西 Shanxi; "shanxi" therefore means 山西.
	{"61", "陕西省", "陕西", "shaanxi", "Shaanxi", []string{"陕", "秦"}},
	{"62", "甘肃省", "甘肃", "gansu", "Gansu", []string{"甘", "陇"}},
	{"63", "青海省", "青海", "qinghai", "Qinghai", []string{"青"}},
	{"64", "宁夏回族自治区", "宁夏", "ningxia", "Ningxia", []string{"宁夏自治区", "ningxia hui", "宁"}},
	{"65", "新疆维吾尔自治区", "新疆", "xinjiang", "Xinjiang", []string{"新疆自治区", "xinjiang uygur", "xinjiang uyghur", "xinjiang weiwuer", "新"}},
	{"71", "台湾省", "台湾", "taiwan", "Taiwan", []string{"臺灣", "台"}},
	{"81", "香港特别行政区", "香港", "xianggang", "Hong Kong", []string{"hongkong", "hk", "hksar", "港", "中国香港"}},
	{"82", "澳门特别行政区", "澳门", "aomen", "Macao", []string{"macau", "澳門", "澳", "中国澳门"}},
}

// City is a prefecture-level (or higher) city.
type City struct {
	Name     string // canonical Chinese name with 市, e.g. 深圳市
	Pinyin   string // toneless pinyin without spaces, e.g. shenzhen
	English  string // usual English name when it differs from pinyin
	Province string // code of the province, see Provinces
}

// Cities lists the municipalities, the provincial capitals, the
// sub-provincial cities and the other large prefecture-level cities — the
// ones customer data mostly names. It is not the full list of 333
// prefecture-level divisions; an unknown city is reported as invalid rather
// than guessed.
var Cities = []City{
	{"北京市", "beijing", "", "11"}, {"天津市", "tianjin", "", "12"}, {"上海市", "shanghai", "", "31"}, {"重庆市", "chongqing", "", "50"},
	{"石家庄市", "shijiazhuang", "", "13"}, {"唐山市", "tangshan", "", "13"}, {"保定市", "baoding", "", "13"}, {"邯郸市", "handan", "", "13"}, {"廊坊市", "langfang", "", "13"},
	{"太原市", "taiyuan", "", "14"}, {"大同市", "datong", "", "14"},
	{"呼和浩特市", "huhehaote", "Hohhot", "15"}, {"包头市", "baotou", "", "15"}, {"鄂尔多斯市", "eerduosi", "Ordos", "15"},
	{"沈阳市", "shenyang", "", "21"}, {"大连市", "dalian", "", "21"}, {"鞍山市", "anshan", "", "21"},
	{"长春市", "changchun", "", "22"}, {"吉林市", "jilinshi", "Jilin City", "22"},
	{"哈尔滨市", "haerbin", "Harbin", "23"}, {"大庆市", "daqing", "", "23"}, {"齐齐哈尔市", "qiqihaer", "Qiqihar", "23"},
	{"南京市", "nanjing", "", "32"}, {"苏州市", "suzhou", "", "32"}, {"无锡市", "wuxi", "", "32"}, {"常州市", "changzhou", "", "32"}, {"南通市", "nantong", "", "32"}, {"徐州市", "xuzhou", "", "32"}, {"扬州市", "yangzhou", "", "32"},
	{"杭州市", "hangzhou", "", "33"}, {"宁波市", "ningbo", "", "33"}, {"温州市", "wenzhou", "", "33"}, {"绍兴市", "shaoxing", "", "33"}, {"嘉兴市", "jiaxing", "", "33"}, {"金华市", "jinhua", "", "33"}, {"台州市", "taizhou", "", "33"},
	{"合肥市", "hefei", "", "34"}, {"芜湖市", "wuhu", "", "34"},
	{"福州市", "fuzhou", "", "35"}, {"厦门市", "xiamen", "Amoy", "35"}, {"泉州市", "quanzhou", "", "35"},
	{"南昌市", "nanchang", "", "36"}, {"赣州市", "ganzhou", "", "36"},
	{"济南市", "jinan", "", "37"}, {"青岛市", "qingdao", "Tsingtao", "37"}, {"烟台市", "yantai", "", "37"}, {"潍坊市", "weifang", "", "37"}, {"临沂市", "linyi", "", "37"},
	{"郑州市", "zhengzhou", "", "41"}, {"洛阳市", "luoyang", "", "41"},
	{"武汉市", "wuhan", "", "42"}, {"宜昌市", "yichang", "", "42"}, {"襄阳市", "xiangyang", "", "42"},
	{"长沙市", "changsha", "", "43"}, {"株洲市", "zhuzhou", "", "43"},
	{"广州市", "guangzhou", "Canton", "44"}, {"深圳市", "shenzhen", "", "44"}, {"东莞市", "dongguan", "", "44"}, {"佛山市", "foshan", "", "44"}, {"珠海市", "zhuhai", "", "44"}, {"惠州市", "huizhou", "", "44"}, {"中山市", "zhongshan", "", "44"}, {"汕头市", "shantou", "", "44"},
	{"南宁市", "nanning", "", "45"}, {"桂林市", "guilin", "", "45"}, {"柳州市", "liuzhou", "", "45"},
	{"海口市", "haikou", "", "46"}, {"三亚市", "sanya", "", "46"},
	{"成都市", "chengdu", "", "51"}, {"绵阳市", "mianyang", "", "51"},
	{"贵阳市", "guiyang", "", "52"}, {"遵义市", "zunyi", "", "52"},
	{"昆明市", "kunming", "", "53"}, {"大理市", "dali", "", "53"},
	{"拉萨市", "lasa", "Lhasa", "54"},
	{"西安市", "xian", "Xi'an", "61"}, {"宝鸡市", "baoji", "", "61"},
	{"兰州市", "lanzhou", "", "62"},
	{"西宁市", "xining", "", "63"},
	{"银川市", "yinchuan", "", "64"},
	{"乌鲁木齐市", "wulumuqi", "Urumqi", "65"}, {"克拉玛依市", "kelamayi", "Karamay", "65"},
	{"台北市", "taibei", "Taipei", "71"}, {"高雄市", "gaoxiong", "Kaohsiung", "71"},
	{"香港", "xianggang", "Hong Kong", "81"}, {"澳门", "aomen", "Macao", "82"},
}

// regionKey folds a province or city name for lookup: Text normalisation,
// lower case, and no spaces, dashes, apostrophes or dots.
func regionKey(raw string) string {
	s, err := Text(raw)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Administrative suffixes stripped before lookup, longest first so that
// 维吾尔自治区 goes before 自治区.
var (
	zhProvinceSuffixes = []string{"维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市"}
	enProvinceSuffixes = []string{"autonomousregion", "specialadministrativeregion", "municipality", "province", "sheng", "shi", "sar"}
	zhCitySuffixes     = []string{"市", "地区"}
	enCitySuffixes     = []string{"city", "shi"}
)

var provinceIndex, cityIndex = buildRegionIndex()

func buildRegionIndex() (map[string]*Division, map[string]*City) {
	pi := map[string]*Division{}
	for i := range Provinces {
		d := &Provinces[i]
		for _, n := range append([]string{d.Name, d.Short, d.Pinyin, d.English}, d.Aliases...) {
			pi[regionKey(n)] = d
		}
	}
	ci := map[string]*City{}
	for i := range Cities {
		c := &Cities[i]
		short := strings.TrimSuffix(c.Name, "市")
		for _, n := range []string{c.Name, short, c.Pinyin, c.English} {
			if n != "" {
				ci[regionKey(n)] = c
			}
		}
	}
	return pi, ci
}

func lookupProvince(raw string) *Division {
	k := regionKey(raw)
	if k == "" {
		return nil
	}
	if d, ok := provinceIndex[k]; ok {
		return d
	}
	for _, set := range [][]string{zhProvinceSuffixes, enProvinceSuffixes} {
		for _, suf := range set {
			if t, ok := strings.CutSuffix(k, suf); ok && t != "" {
				if d, ok := provinceIndex[t]; ok {
					return d
				}
			}
		}
	}
	return nil
}

// Province maps a province name as people write it — 北京, 北京市, Beijing,
// BEIJING, Beijing Shi, 广西, Guangxi Zhuang Autonomous Region, Inner
// Mongolia, HK — to its canonical full Chinese name (北京市). Single-character
// abbreviations (京, 沪, 粤) are accepted too.
func Province(raw string) (string, error) {
	if d := lookupProvince(raw); d != nil {
		return d.Name, nil
	}
	return "", invalid("province", raw, "not a known Chinese provincial-level division")
}

// ProvinceInfo returns the whole Division for a province name.
func ProvinceInfo(raw string) (Division, error) {
	if d := lookupProvince(raw); d != nil {
		return *d, nil
	}
	return Division{}, invalid("province", raw, "not a known Chinese provincial-level division")
}

// ProvinceByCode returns the division of a GB/T 2260 code: its first two
// digits are used, so a six-digit county code or an ID number prefix works.
func ProvinceByCode(code string) (Division, bool) {
	if len(code) < 2 {
		return Division{}, false
	}
	for _, d := range Provinces {
		if d.Code == code[:2] {
			return d, true
		}
	}
	return Division{}, false
}

// provinceByPrefix finds the division whose full or short Chinese name
// starts s, as in geocoding output like "江苏省常州市" or "中国香港特别行政区".
func provinceByPrefix(s string) (*Division, bool) {
	s = strings.TrimPrefix(s, "中国")
	best, bestLen := (*Division)(nil), 0
	for i := range Provinces {
		d := &Provinces[i]
		for _, n := range []string{d.Name, d.Short} {
			if strings.HasPrefix(s, n) && len(n) > bestLen {
				best, bestLen = d, len(n)
			}
		}
	}
	return best, best != nil
}

// CityInfo maps a city name (深圳, 深圳市, Shenzhen, shen zhen, Canton) to
// the canonical City. An input that is a province-level municipality
// (北京) is a city too.
func CityInfo(raw string) (City, error) {
	k := regionKey(raw)
	if c, ok := cityIndex[k]; ok && k != "" {
		return *c, nil
	}
	for _, set := range [][]string{zhCitySuffixes, enCitySuffixes} {
		for _, suf := range set {
			if t, ok := strings.CutSuffix(k, suf); ok && t != "" {
				if c, ok := cityIndex[t]; ok {
					return *c, nil
				}
			}
		}
	}
	return City{}, invalid("city", raw, "not a known city")
}

// CityName is CityInfo returning only the canonical name.
func CityName(raw string) (string, error) {
	c, err := CityInfo(raw)
	return c.Name, err
}

// ProvinceNames returns the canonical names of all divisions, sorted by code.
func ProvinceNames() []string {
	ds := append([]Division(nil), Provinces...)
	sort.Slice(ds, func(i, j int) bool { return ds[i].Code < ds[j].Code })
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}
