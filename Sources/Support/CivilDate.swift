/// Calendar arithmetic for the timestamps berth parses by hand (Docker's log times, OCI image
/// times): Foundation's calendars load ICU data on first use, which every `container run` paid.
public enum CivilDate {
    /// Days since 1970-01-01 of a proleptic Gregorian date, years counted from March so that the
    /// leap day comes last (Howard Hinnant's days_from_civil).
    public static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
