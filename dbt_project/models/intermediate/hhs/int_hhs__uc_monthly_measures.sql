-- The HHS monthly page figures the cross-checks use, one row per month.

with figures as (

    select * from {{ ref('stg_hhs__uc_monthly') }}

)

select
    month,
    max(value) filter (where measure = 'uc_referrals_30day_avg') as referrals_30day_avg,
    max(value) filter (where measure = 'children_in_care_avg') as children_in_care_avg,
    max(value) filter (where measure = 'discharges_sponsor_total') as discharges_to_sponsors,
    max(vintage) as vintage,
    list_sort(list(distinct source_file)) as source_files
from figures
group by month
