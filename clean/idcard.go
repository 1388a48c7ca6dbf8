package clean

import (
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// IDCard is what a Chinese resident identity number (居民身份证号码,
// GB 11643-1999) says about its holder.
type IDCard struct {
	Number   string    // the 18-character number, upgraded from 15 digits if needed
	Region   string    // six-digit administrative division code of registration
	Province string    // canonical province name of the region code
	Birth    time.Time // date of birth, UTC midnight
	Gender   string    // "male" or "female", from the parity of the 17th digit
	Upgraded bool      // the input was an old 15-digit number
}

// BirthDate returns the birth date as ISO 8601 (YYYY-MM-DD).
func (c IDCard) BirthDate() string { return c.Birth.Format(time.DateOnly) }

// idWeights are 2^(17-i) mod 11, the ISO 7064 MOD 11-2 weights of the first
// 17 digits.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idCheck returns the MOD 11-2 check character of 17 digits.
func idCheck(d17 string) byte {
	sum := 0
	for i := range 17 {
		sum += int(d17[i]-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11]
}

// ParseIDCard validates a resident identity number and derives birth date,
// gender and province. It accepts full-width digits, spaces and a lower-case
// x, and upgrades old 15-digit numbers (issued before 1999, births in the
// 1900s) to 18 digits with a computed check character. It checks the length,
// the characters, the check character, that the birth date exists, and that
// the region code starts with a known province code. It cannot know whether
// the number was actually issued.
func ParseIDCard(raw string) (IDCard, error) {
	s := strings.ToUpper(norm.NFKC.String(raw))
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return r
	}, s)
	var c IDCard
	switch len(s) {
	case 15:
		for i := range 15 {
			if s[i] < '0' || s[i] > '9' {
				return IDCard{}, invalid("id_card", raw, "a 15-digit number must be all digits")
			}
		}
		// Old numbers have a two-digit year of the 1900s and no check digit.
		d17 := s[:6] + "19" + s[6:15]
		s = d17 + string(idCheck(d17))
		c.Upgraded = true
	case 18:
		for i := range 17 {
			if s[i] < '0' || s[i] > '9' {
				return IDCard{}, invalid("id_card", raw, "character %d must be a digit", i+1)
			}
		}
		if (s[17] < '0' || s[17] > '9') && s[17] != 'X' {
			return IDCard{}, invalid("id_card", raw, "the check character must be a digit or X")
		}
		if want := idCheck(s[:17]); s[17] != want {
			return IDCard{}, invalid("id_card", raw, "the check character (the 18th) does not match the first 17")
		}
	default:
		return IDCard{}, invalid("id_card", raw, "must have 18 characters (or 15 digits), has %d", len([]rune(s)))
	}
	d, ok := ProvinceByCode(s[:2])
	if !ok {
		return IDCard{}, invalid("id_card", raw, "the region code (characters 1-6) names no province")
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1850 {
		return IDCard{}, invalid("id_card", raw, "the birth date (characters 7-14) is not a valid date")
	}
	c.Number = s
	c.Region = s[:6]
	c.Province = d.Name
	c.Birth = birth
	if (s[16]-'0')%2 == 1 {
		c.Gender = "male"
	} else {
		c.Gender = "female"
	}
	return c, nil
}

// IDCardNumber is ParseIDCard returning only the standardized 18-character
// number.
func IDCardNumber(raw string) (string, error) {
	c, err := ParseIDCard(raw)
	return c.Number, err
}

// usccAlphabet is the GB 32100-2015 character set: digits and capital
// letters without I, O, Z, S and V, which are too easily confused with 1, 0,
// 2, 5 and U.
const usccAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// usccWeights are 3^i mod 31.
var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// USCC validates a unified social credit code (统一社会信用代码,
// GB 32100-2015) and returns it upper-cased without spaces: 18 characters
// from the code's alphabet, a registration-authority character, a six-digit
// region code in positions 3-8, and a MOD 31 check character.
func USCC(raw string) (string, error) {
	s := strings.ToUpper(norm.NFKC.String(raw))
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return r
	}, s)
	if n := len([]rune(s)); n != 18 {
		return "", invalid("uscc", raw, "must have 18 characters, has %d", n)
	}
	sum := 0
	for i := range 18 {
		v := strings.IndexByte(usccAlphabet, s[i])
		if v < 0 {
			return "", invalid("uscc", raw, "character %d is not allowed (letters I, O, Z, S, V are never used)", i+1)
		}
		if i < 17 {
			sum += v * usccWeights[i]
		}
	}
	if !strings.ContainsRune("123456789ABCDEFGHNY", rune(s[0])) {
		return "", invalid("uscc", raw, "the registration authority (character 1) is not assigned")
	}
	for i := 2; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", invalid("uscc", raw, "region code (characters 3-8) must be digits")
		}
	}
	want := usccAlphabet[(31-sum%31)%31]
	if s[17] != want {
		return "", invalid("uscc", raw, "the check character (the 18th) does not match the first 17")
	}
	return s, nil
}
