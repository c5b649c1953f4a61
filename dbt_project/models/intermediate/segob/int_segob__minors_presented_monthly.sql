-- Foreigners presented to Mexico's migration authority by age group (table 3.1.3), summed by
-- month over both sexes. Minors are not published by nationality.

with presented as (

    select * from {{ ref('stg_segob__presented_by_sex_age') }}

)

select
    month,
    {{ sum_where('events', 'is_minor') }} as minors_presented,
    {{ sum_where('events', "age_group = '12-17'") }} as minors_presented_12_17,
    {{ sum_where('events', "age_group = '0-11' and travel_condition = 'accompanied'") }}
        as minors_presented_0_11_accompanied,
    {{ sum_where('events', "age_group = '0-11' and travel_condition = 'unaccompanied'") }}
        as minors_presented_0_11_unaccompanied,
    {{ sum_where('events', "age_group = '18+'") }} as adults_presented,
    {{ sum_where('events') }} as persons_presented,
    max(vintage) as vintage,
    list_sort(list(distinct source_file)) as source_files
from presented
group by month
