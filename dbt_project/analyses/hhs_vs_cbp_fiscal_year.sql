-- The US cross-check by fiscal year: CBP's encounters of non-Mexican unaccompanied children per
-- day (all titles, and Title 8 only: children expelled under Title 42 were never referred)
-- against HHS's daily "apprehended and placed in CBP custody" (excluding Mexico) per reported
-- day and HHS's 30-day average of referrals, month-weighted.

select
    fiscal_year,
    sum(cbp_non_mexican_uc_encounters) as cbp_non_mexican_uc_encounters,
    round(sum(cbp_non_mexican_uc_encounters) / sum(days_in_month) filter (
        where cbp_non_mexican_uc_encounters is not null), 1) as cbp_per_day,
    round(sum(cbp_non_mexican_uc_title_8) / sum(days_in_month) filter (
        where cbp_non_mexican_uc_title_8 is not null), 1) as cbp_title_8_per_day,
    round(sum(hhs_apprehended_excl_mexico_reported_days) / sum(hhs_days_reported), 1)
        as hhs_apprehended_per_reported_day,
    round(avg(hhs_referrals_30day_avg), 1) as hhs_referrals_per_day_avg,
    count(*) filter (where cbp_non_mexican_uc_encounters is not null) as cbp_months,
    count(*) filter (where hhs_days_reported is not null) as hhs_daily_months,
    count(*) filter (where hhs_referrals_30day_avg is not null) as hhs_page_months
from {{ ref('hhs_vs_cbp_monthly') }}
group by fiscal_year
order by fiscal_year
