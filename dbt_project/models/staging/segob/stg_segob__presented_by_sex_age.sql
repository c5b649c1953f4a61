-- Bulletin table 3.1.3 (the events of 3.1.1 by sex, age group and travel condition), as the
-- newest workbook carrying the month published it.

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'segob_presented_by_sex_age'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        sex,
        age_group,
        travel_condition,
        age_group in ('0-11', '12-17') as is_minor,
        cast(events as bigint) as events,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
